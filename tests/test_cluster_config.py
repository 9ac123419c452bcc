"""The cluster configs (cluster.yaml, experiments/cluster-local.yaml) as Ray's cluster launcher reads them.

Accepted by the launcher, installing the pinned project, secret-free, and sized for
search/configs/cifar10.yaml."""
import re

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from experiments_paths import CONFIGS, EXPERIMENTS, ROOT

CLUSTER = ROOT / "cluster.yaml"
LOCAL = EXPERIMENTS / "cluster-local.yaml"
# An AWS access key id, a secret key setting, an account id in an ARN, a private key block.
SECRETS = [r"AKIA[0-9A-Z]{16}", r"(?i)aws_secret_access_key\s*[:=]", r"arn:aws:[a-z0-9-]*:[a-z0-9-]*:\d{12}",
           r"-----BEGIN [A-Z ]*PRIVATE KEY-----"]


def load(path):
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", [CLUSTER, LOCAL], ids=["aws", "local"])
def test_the_launcher_accepts_the_config(path):
    config = prepare_config(load(path))  # fills in the provider's defaults, as `ray up` does
    validate_config(config)  # Ray's schema and node-type checks; raises on any problem
    assert config["head_node_type"] in config["available_node_types"]
    assert config["file_mounts"] == {"~/sase-nas": "."}


def test_aws_cluster_has_a_cpu_head_and_gpu_workers_with_the_pinned_project():
    config = load(CLUSTER)
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    assert len(workers) == 1 and workers[0]["resources"]["GPU"] >= 1
    assert 1 <= workers[0]["min_workers"] <= workers[0]["max_workers"] <= config["max_workers"]
    install = " ".join(config["setup_commands"])
    assert "pip install" in install and "-c ~/sase-nas/constraints.txt -e ~/sase-nas" in install
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert {"torch", "torchvision", "ray"} <= set(pins)
    assert pins["ray"] == ray.__version__  # the launcher on this machine runs the cluster's Ray


@pytest.mark.parametrize("path", [CLUSTER, LOCAL], ids=["aws", "local"])
def test_no_secret_in_the_config(path):
    text = path.read_text()
    for pattern in SECRETS:
        assert not re.search(pattern, text), pattern
    key = load(path)["auth"].get("ssh_private_key")
    assert key is None or key.startswith("~/"), "a key path on the user's machine, never a key"


def test_cifar10_config_fits_the_gpu_workers():
    """The search's actors all fit on min_workers GPU nodes, so it starts without waiting for more."""
    cluster, search = load(CLUSTER), load(CONFIGS / "cifar10.yaml")
    node = next(t for t in cluster["available_node_types"].values() if t["resources"].get("GPU"))
    actor = search["evaluator"]
    per_node = min(node["resources"]["GPU"] // actor["num_gpus"], node["resources"]["CPU"] // actor["num_cpus"])
    assert per_node * node["min_workers"] >= search["workers"]
    home = f"/home/{cluster['auth']['ssh_user']}/"
    assert search["out"].startswith(home) and actor["data_dir"].startswith(home)
    # the workers fetch CIFAR-10 once, where the config reads it
    fetch = " ".join(cluster["worker_setup_commands"])
    assert "CIFAR10" in fetch and actor["data_dir"].replace(home, "~/") in fetch


def test_local_config_is_loopback_only():
    config = load(LOCAL)
    assert config["provider"] == {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}
    assert config["auth"]["ssh_user"] == "root"
    assert any("--node-ip-address=127.0.0.1" in c for c in config["head_start_ray_commands"])
