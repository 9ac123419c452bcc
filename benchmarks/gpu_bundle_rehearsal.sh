#!/usr/bin/env bash
# The GPU run's installation rehearsed on this machine: does the bundle alone give a working Ray?
#
#   benchmarks/gpu_bundle_rehearsal.sh [--python PYTHON] [--keep]
#
# A lent GPU machine can fetch nothing: Ray and the few packages its image lacks come in the folder
# benchmarks/gpu_bundle.sh writes, and one missing wheel there costs a lease. This builds that
# folder for this machine's Python (--python, default python3: 3.11 or 3.12), then in a fresh
# virtual environment installs what the GPU image already has from the usual registry (torch,
# torchvision and the project's other needs, and those of Ray's needs the image has), Ray from the
# bundle alone (no index: the resolver fails if the bundle lacks a dependency), and the project
# with --no-deps. Then it checks, timing each step:
#   1. pip check: every installed package's requirements are met
#   2. import ray (the stripped wheel), ray.tune and stage 2, which uses Tune
#   3. a local Ray starts (ray.init(num_cpus=1)) and a remote function returns
#   4. the bundle installed as on the GPU machine (pip --target, PYTHONPATH) gives the same Ray
#   5. python benchmarks/gpu_suite.py --cpu-smoke passes (every part "ok"), run as on the GPU machine
# Everything goes to a temporary folder, removed at the end unless --keep. It needs a few GB of
# disk for torch and its CUDA libraries.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=python3
keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --python) python=${2:?--python needs an interpreter}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0 PIP_DISABLE_PIP_VERSION_CHECK=1
work=$(mktemp -d /tmp/gpu-bundle-rehearsal.XXXXXX)
if [ "$keep" = 1 ]; then echo "keeping $work"; else trap 'rm -rf "$work"' EXIT; fi
bundle=$work/bundle

# What the GPU image already has, installed here from the registry as it would be there: the
# project's needs (setup.cfg), and Ray's and the "tune" extra's that gpu_bundle.sh does not bundle.
# aiohttp, grpcio and psutil are on the image too, and Ray uses them when it finds them.
IMAGE_PACKAGES=(torch torchvision numpy pandas pyarrow scikit-learn tqdm pyyaml matplotlib
                click filelock msgpack packaging protobuf requests fsspec attrs typing-extensions
                aiohttp grpcio psutil)

SECONDS=0
step_start=
step() {  # how long the step before took, then this step's name
    [ -z "$step_start" ] || echo "   ($((SECONDS - step_start)) s)"
    step_start=$SECONDS
    echo "== $*"
}

step "bundle for CPython $version"
"$root/benchmarks/gpu_bundle.sh" --python-version "$version" --out "$bundle"

step "fresh virtual environment, what the GPU image has (registry)"
"$python" -m venv "$work/venv"
venv_python=$work/venv/bin/python
"$venv_python" -m pip install -q --upgrade pip
"$venv_python" -m pip install -q -c "$root/constraints.txt" "${IMAGE_PACKAGES[@]}"

step "ray[tune] from the bundle alone (no index)"
# No configuration file and no PIP_FIND_LINKS: nothing but the bundle may offer a wheel.
env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null \
    "$venv_python" -m pip install -q --no-index --find-links "$bundle" "ray[tune]==$(sed -n 's/^ray==//p' "$root/constraints.txt")"

step "the project, --no-deps"
"$venv_python" -m pip install -q --no-deps -e "$root"

step "check 1: pip check"
"$venv_python" -m pip check

step "check 2: import ray (stripped), ray.tune, stage 2"
(cd "$work" && "$venv_python" - <<'EOF'
import os
import ray
from ray import tune  # noqa: F401
from ray.tune.schedulers import ASHAScheduler  # noqa: F401
import stage2.retrain  # noqa: F401  (Tune's Tuner and ASHA, as stage 2 uses them)
here = os.path.dirname(ray.__file__)
assert not os.path.exists(os.path.join(here, "jars")), "ray/jars is there: not the stripped wheel"
print(f"ray {ray.__version__} from {here}")
EOF
)

step "check 3: a local Ray starts and a remote function returns"
(cd "$work" && "$venv_python" - <<'EOF'
import ray
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
@ray.remote
def square(x: int) -> int:
    return x * x
assert ray.get(square.remote(7)) == 49
ray.shutdown()
print("remote function returned 49")
EOF
)

step "check 4: the bundle installed as on the GPU machine (pip --target, PYTHONPATH)"
"$venv_python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" \
    "$bundle"/*.whl
(cd "$work" && PYTHONPATH=$work/site "$venv_python" - <<EOF
import ray
assert ray.__file__.startswith("$work/site/"), ray.__file__
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
assert ray.get(ray.remote(lambda: 6 * 7).remote()) == 42
ray.shutdown()
print(f"ray {ray.__version__} from {ray.__file__}: a remote function returned 42")
EOF
)

step "check 5: benchmarks/gpu_suite.py --cpu-smoke, Ray from the --target folder as on the GPU machine"
(cd "$root" && PYTHONPATH=$work/site:$root "$venv_python" benchmarks/gpu_suite.py --cpu-smoke \
    --out "$work/gpu_suite_cpu_smoke.json")
"$venv_python" - "$work/gpu_suite_cpu_smoke.json" <<'EOF'
import json, sys
parts = json.load(open(sys.argv[1]))["parts"]
print({name: part["status"] for name, part in parts.items()})
assert parts and all(part["status"] == "ok" for part in parts.values()), "a part did not end ok"
EOF

step "done"
echo "rehearsal passed in $SECONDS s"
