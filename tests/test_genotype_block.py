"""The block settings (combine rule, gate bias) travel with a genotype: file format, build_model, exports."""
import json

import pytest
import torch

from evaluator.models import build_model
from rundir import RunDir
from searchspace import GATE_BIAS, GenotypeError, SASEBlock, from_json, from_key, load
from tiny_run import CONFIG, make_run

CBAM = "avg_max|fc_relu_fc|mean_max|conv7x7"


def test_a_version_1_file_without_block_means_the_defaults():
    genotype = from_json(json.dumps({"format": "sase-genotype", "version": 1, "search_space": "sase-v1",
                                     "ops": dict(zip(["channel_squeeze", "channel_excitation", "spatial_squeeze",
                                                      "spatial_excitation"], CBAM.split("|")))}))
    assert genotype.block is None and (genotype.combine, genotype.gate_bias) == ("sequential", GATE_BIAS)
    assert "block" not in json.loads(genotype.to_json())


def test_block_round_trips_and_a_missing_key_takes_its_default():
    genotype = from_key(CBAM).with_block("parallel", 1.5)
    again = from_json(genotype.to_json())
    assert (again.combine, again.gate_bias) == ("parallel", 1.5) and again == from_key(CBAM)
    document = json.loads(genotype.to_json())
    document["block"] = {"combine": "parallel"}
    assert from_json(json.dumps(document)).gate_bias == GATE_BIAS


@pytest.mark.parametrize("block, message", [
    ([], "'block' must be an object"),
    ({"combine": "diagonal"}, "'block.combine': unknown rule 'diagonal'; valid: sequential, parallel"),
    ({"gate_bias": "high"}, "'block.gate_bias' must be a finite number"),
    ({"gate_bias": True}, "'block.gate_bias' must be a finite number"),
    ({"reduction": 8}, "'block' has unknown key 'reduction'"),
])
def test_a_bad_block_is_refused_naming_the_key(block, message):
    document = json.loads(from_key(CBAM).to_json())
    document["block"] = block
    with pytest.raises(GenotypeError, match=message.replace("(", r"\(").replace("[", r"\[")):
        from_json(json.dumps(document))


def test_non_strict_json_is_refused_and_nan_metadata_is_written_as_null():
    text = from_key(CBAM).with_metadata(search_mean_reward=float("nan"), best=float("inf")).to_json()
    assert json.loads(text)["metadata"] == {"search_mean_reward": None, "best": None}
    for constant in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(GenotypeError, match=f"not strict JSON: {constant}"):
            from_json(text.replace("null", constant, 1))


def test_build_model_honours_the_block_of_a_genotype_file(tmp_path):
    path = tmp_path / "parallel.json"
    path.write_text(from_key(CBAM).with_block("parallel", 1.0).to_json())
    torch.manual_seed(0)
    from_file = build_model("resnet20", 10, attention=str(path))
    torch.manual_seed(0)
    explicit = build_model("resnet20", 10, attention=CBAM, combine="parallel", gate_bias=1.0)
    blocks = [m for m in from_file.modules() if isinstance(m, SASEBlock)]
    assert blocks and all(b.combine == "parallel" for b in blocks)
    x = torch.randn(2, 3, 32, 32)
    from_file.eval(), explicit.eval()
    assert torch.equal(from_file(x), explicit(x))
    assert SASEBlock(16, load(path), combine="sequential").combine == "sequential"  # a given rule wins


def test_export_and_winner_carry_what_the_search_used(tmp_path):
    rundir = make_run(tmp_path / "run")
    config = {**CONFIG, "evaluator": {**CONFIG["evaluator"], "combine": "parallel", "gate_bias": 0.5}}
    rundir.create(config)
    exported = rundir.genotype_at_rank(1)
    assert (exported.combine, exported.gate_bias) == ("parallel", 0.5)
    rundir.write_winner(from_key(CBAM))
    winner = RunDir(tmp_path / "run").read_winner()
    assert (winner.combine, winner.gate_bias) == ("parallel", 0.5)
