#!/usr/bin/env bash
# The wheels a lent GPU machine lacks for a search, in one folder that travels with the working tree.
#
#   benchmarks/gpu_bundle.sh [--python-version 3.12|3.11] [--out DIR]
#
# The GPU machine's image has torch, torchvision and the project's other needs, but no Ray, and
# nothing can be fetched there: each call carries at most 64 MiB (the working tree and the carried
# folders together), and Ray's wheel alone is about 76 MiB. This downloads Ray at the version of
# constraints.txt and the few of ray[tune]'s requirements the image lacks (manylinux x86-64 wheels
# for CPython --python-version: 3.12 is the GPU image's; 3.11 is for the rehearsal on a machine
# with Python 3.11, benchmarks/gpu_bundle_rehearsal.sh), strips from Ray's wheel what a headless
# search never loads (benchmarks/strip_wheel.py) and writes all the wheels to --out (default
# .gpu_bundle/ at the checkout's root, which git ignores). It prints the folder's size, the working
# tree's and their sum, and fails when the sum is over LIMIT_MIB (below). docs/gpu_run.md says how
# the folder is installed on the GPU machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python_version=3.12
out=$root/.gpu_bundle
python=${PYTHON:-python3}  # any Python with pip: it only downloads and re-packs

while [ $# -gt 0 ]; do
    case $1 in
        --python-version) python_version=${2:?--python-version needs 3.12 or 3.11}; shift 2 ;;
        --out) out=${2:?--out needs a folder}; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $python_version in
    3.12|3.11) ;;
    *) echo "error: --python-version must be 3.12 (the GPU image) or 3.11 (the rehearsal), got $python_version" >&2
       exit 2 ;;
esac

# The device tool carries at most 64 MiB per call; the bundle and the tree must leave 8 MiB of it
# free, for results and files written between building the bundle and the call.
LIMIT_MIB=56

ray_version=$(sed -n 's/^ray==//p' "$root/constraints.txt")
[ -n "$ray_version" ] || { echo "error: no ray==VERSION line in constraints.txt" >&2; exit 2; }

# What ray[tune] requires (Ray's METADATA: its Requires-Dist lines without an extra, and those of
# the "tune" extra) that the GPU image does not have, with what those need in turn; versions as
# tested here. Already on the image, so not bundled (docs/gpu_run.md says where the list comes from):
# click, filelock, msgpack, packaging, protobuf, pyyaml, requests (Ray itself); pandas, pyarrow,
# fsspec, requests (the "tune" extra); attrs, typing-extensions, numpy (needs of the ones below).
DEPENDENCIES=(
    # Ray itself: jsonschema (it validates runtime environments with it) and its needs
    jsonschema==4.26.0
    jsonschema-specifications==2025.9.1
    referencing==0.37.0
    rpds-py==2026.9.1
    # the "tune" extra: pydantic (Ray Train's and Tune's configs) and its needs
    pydantic==2.14.4
    pydantic-core==2.50.5
    annotated-types==0.8.0
    typing-inspection==0.4.5
    # the "tune" extra: tensorboardX (Tune's TensorBoard logger; its needs numpy, packaging and
    # protobuf are on the image)
    tensorboardX==2.6.5
)

# Parts of Ray's wheel a search never loads, measured with `unzip -l` on ray 2.60.0's cp312 wheel
# (compressed MiB of the 75.6 MiB wheel):
STRIP=(
    ray/jars/                     # 30.7: the Java workers' jar; the search runs Python workers only
    ray/dashboard/client/build/   #  2.4: the dashboard's web client; the search starts no dashboard
    ray/rllib/                    #  1.6: RLlib; Tune imports it only to look up RLlib's trainables
)
# Kept although big: ray/core/ (21.4: the raylet and GCS server binaries), ray/_raylet.so (11.2),
# ray/_private/runtime_env/ (3.0: the runtime-env agent every node starts, with its own aiohttp).

# What pip downloads for: CPython $python_version on x86-64 Linux; a wheel names one of these
# manylinux tags or none (pure Python).
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT

echo "downloading ray==$ray_version and ${#DEPENDENCIES[@]} dependencies for CPython $python_version"
"$python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$python_version" --implementation cp "${PLATFORMS[@]/#/--platform=}" \
    -d "$download" "ray==$ray_version" "${DEPENDENCIES[@]}"

mkdir -p "$out"
rm -f "$out"/*.whl  # one version of each package: two stop the whole install
ray_wheel=$(find "$download" -name "ray-$ray_version-*.whl")
for wheel in "$download"/*.whl; do
    [ "$wheel" = "$ray_wheel" ] || cp "$wheel" "$out/"
done
strip_args=()
for prefix in "${STRIP[@]}"; do strip_args+=(--drop "$prefix"); done
"$python" "$root/benchmarks/strip_wheel.py" "$ray_wheel" "$out/$(basename "$ray_wheel")" "${strip_args[@]}"

# The working tree as the device tool sends it: tracked files and untracked ones git does not ignore.
tree_bytes=$(cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do [ -f "$file" ] && stat -c %s "$file"; done | awk '{s += $1} END {print s + 0}')
bundle_bytes=$(find "$out" -maxdepth 1 -name '*.whl' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

echo
find "$out" -maxdepth 1 -name '*.whl' -printf '%s %f\n' | sort -rn | awk '{printf "  %6.2f MiB  %s\n", $1 / 1048576, $2}'
echo "bundle:        $(mib "$bundle_bytes") in $out ($(find "$out" -maxdepth 1 -name '*.whl' | wc -l) wheels)"
echo "working tree:  $(mib "$tree_bytes")"
total=$((bundle_bytes + tree_bytes))
echo "together:      $(mib "$total") of the 64 MiB a call carries (this script's limit: $LIMIT_MIB MiB)"
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
    echo "error: bundle and working tree are over $LIMIT_MIB MiB: strip more from Ray's wheel or carry less" >&2
    exit 1
fi
