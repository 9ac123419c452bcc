"""Few-shot supernets: a genotype trains and scores in its own sub-supernet, which inherits the
one-shot weights at the split, and a few-shot search resumes bit for bit."""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
import yaml

import searchspace
from evaluator.few_shot import FewShotSupernet, SPLITS, gate_family, split_shared, split_when_due
from evaluator.supernet import Supernet
from evaluator.training import train_steps
from experiments_paths import SEARCH_SCRIPT, VOLATILE
from rundir import RunDir
from search.shot_balance import balanced_training
from searchspace import KNOWN, from_key
from tiny_run import write_search_config

X = torch.randn(4, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
NEAR_IDENTITY = ["none|none|none|none", "gap|fc_relu_fc|none|none", "none|none|mean|conv7x7",
                 "avg_max|fc_relu_fc|mean_max|conv7x7", "context|fc_ln_relu_fc|none|none"]
MODULATING = ["gap|eca|none|none", "style|bn|none|none", "gap|none|none|none", "gap|eca_dilated|mean|conv3x3"]


def split_supernet(split="gate_family"):
    """A double-precision few-shot supernet after its split, every shot's weights moved apart."""
    torch.manual_seed(0)
    net = FewShotSupernet(Supernet("resnet20", num_classes=10), split).double()
    net.load_state_dict(split_shared({"weights": net.state_dict(), "momentum": {}})["weights"])
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.is_floating_point() and not name.startswith("shots.0."):
                tensor.add_(0.05 * torch.randn_like(tensor)) if "running_var" not in name else tensor.mul_(1.1)
    return net.eval()


def test_the_gate_families_are_the_measured_ones():
    assert [gate_family(from_key(k)) for k in NEAR_IDENTITY] == [0] * len(NEAR_IDENTITY)
    assert [gate_family(from_key(k)) for k in MODULATING] == [1] * len(MODULATING)
    assert gate_family(KNOWN["srm"]) == 1 and gate_family(KNOWN["se"]) == 0 and gate_family(KNOWN["none"]) == 0


@pytest.mark.parametrize("key", NEAR_IDENTITY + MODULATING)
def test_a_genotype_is_scored_in_its_own_shot_whose_weights_the_extracted_network_carries(key):
    net = split_supernet()
    genotype, shot = from_key(key), gate_family(from_key(key))
    assert net.shot_of(genotype) == shot
    network = net.extract(genotype).eval()
    torch.testing.assert_close(net(X, genotype), network(X), rtol=0, atol=1e-10)
    torch.testing.assert_close(net(X, genotype), net.shots[shot](X, genotype), rtol=0, atol=0)
    own = net.shots[shot].extract(genotype).state_dict()
    other = net.shots[1 - shot].extract(genotype).state_dict()
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, own[name])
    assert any(not torch.equal(tensor, other[name]) for name, tensor in network.state_dict().items())


def test_before_the_split_every_genotype_runs_in_the_one_shot_supernet():
    torch.manual_seed(0)
    one_shot = Supernet("resnet20", num_classes=10).double().eval()
    reference = {k: v.clone() for k, v in one_shot.state_dict().items()}
    net = FewShotSupernet(one_shot, "gate_family").eval()
    assert net.shots[0] is one_shot and int(net.split_done) == 0
    plain = Supernet("resnet20", num_classes=10).double().eval()
    plain.load_state_dict(reference)
    for key in NEAR_IDENTITY + MODULATING:
        assert net.shot_of(key) == 0
        torch.testing.assert_close(net(X, key), plain(X, key), rtol=0, atol=0)


def test_the_split_copies_weights_and_momentum_into_every_shot_and_marks_itself():
    net = FewShotSupernet(Supernet("resnet20", num_classes=10), "spatial_branch")
    weights = {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v.clone()
               for k, v in net.state_dict().items()}
    momentum = {"shots.0.network.fc.weight": torch.randn(10, 64)}
    shared = {"weights": weights, "momentum": momentum}
    split = split_shared(shared)
    assert int(split["weights"]["split_done"]) == 1 and int(shared["weights"]["split_done"]) == 0
    for name, tensor in weights.items():
        if name.startswith("shots.0."):
            assert torch.equal(split["weights"]["shots.1." + name[8:]], tensor)
    assert torch.equal(split["momentum"]["shots.1.network.fc.weight"], momentum["shots.0.network.fc.weight"])
    assert split_when_due(shared, "spatial_branch", 3, 3) is shared  # not yet
    assert int(split_when_due(shared, "spatial_branch", 3, 4)["weights"]["split_done"]) == 1
    assert split_when_due(split, "spatial_branch", 3, 5) is split  # once only
    assert split_when_due(shared, "none", 0, 1) is shared


def test_training_after_the_split_moves_only_the_genotypes_own_shot():
    torch.manual_seed(0)
    net = FewShotSupernet(Supernet("resnet20", num_classes=10), "gate_family")
    net.load_state_dict(split_shared({"weights": net.state_dict(), "momentum": {}})["weights"])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    batches = [(torch.randn(8, 3, 32, 32), torch.arange(8) % 10) for _ in range(2)]
    train_steps(net, optimizer, batches, [KNOWN["eca"], KNOWN["srm"]], 0.1, 5.0)
    changed = {k.split(".")[1] for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"1"}


def test_every_split_covers_the_space_with_its_shots():
    for split in SPLITS.values():
        regions = {split.region(g) for g in searchspace.KNOWN.values()}
        assert regions == set(range(split.shots)), split.name


def test_balanced_training_gives_every_shot_its_share_keeping_the_controllers_own_first():
    split = SPLITS["gate_family"]
    controller = NEAR_IDENTITY * 2 + MODULATING[:1]  # 11 steps, 1 in the modulating region
    keys = balanced_training(controller, split, seed=0, round_number=3)
    regions = [split.region(from_key(k)) for k in keys]
    assert len(keys) == 11 and regions.count(0) == 6 and regions.count(1) == 5
    assert regions[:10] == [0, 1] * 5  # interleaved shot by shot
    assert [k for k in keys if split.region(from_key(k)) == 0] == controller[:6]
    assert keys[1] == MODULATING[0] and all(from_key(k).key == k for k in keys)
    assert balanced_training(controller, split, seed=0, round_number=3) == keys  # a resume draws the same
    assert balanced_training(controller, split, seed=0, round_number=4) != keys
    assert balanced_training(NEAR_IDENTITY[:2] + MODULATING[:2], split, 0, 1) == [
        NEAR_IDENTITY[0], MODULATING[0], NEAR_IDENTITY[1], MODULATING[1]]  # nothing to fill: the controller's


def search(config, out, *extra):
    return subprocess.Popen([sys.executable, str(SEARCH_SCRIPT), "--config", str(config), "--out", str(out), "--quiet",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(process):
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]


@pytest.fixture(scope="module")
def few_shot_config(tmp_path_factory):
    path = write_search_config(tmp_path_factory.mktemp("few-shot"), rounds=3, derive=2, seed=1, warmup=0)
    config = yaml.safe_load(path.read_text())
    config["evaluator"].update(few_shot="gate_family", few_shot_from_round=1, few_shot_training="balanced")
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_few_shot_search_killed_after_its_split_resumes_to_the_uninterrupted_run(few_shot_config, tmp_path):
    whole = tmp_path / "a" / "run"
    finish(search(few_shot_config, whole))
    weights = RunDir(str(whole)).load_checkpoint()["shared"]["weights"]
    assert int(weights["split_done"]) == 1
    assert any(not torch.equal(v, weights["shots.1." + k[8:]]) for k, v in weights.items() if k.startswith("shots.0."))

    out = tmp_path / "b" / "run"  # the same run id
    process = search(few_shot_config, out)
    marker = out / "rewards" / "round-000002.parquet"  # round 2: the first after the split
    deadline = time.monotonic() + 600
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the search did not get to round 2"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finish(search(few_shot_config, out, "--resume"))

    def table(run):
        return pd.read_parquet(run / "rewards").drop(columns=VOLATILE).reset_index(drop=True)

    pd.testing.assert_frame_equal(table(out), table(whole))
    resumed = RunDir(str(out)).load_checkpoint()["shared"]["weights"]
    assert all(torch.equal(resumed[k], weights[k]) for k in weights)
