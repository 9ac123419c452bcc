"""Genotypes as docs/formats.md fixes them: JSON round trip, canonical form, key strings, strict refusals."""
import json
import subprocess
import sys

import pytest

import searchspace
from searchspace import Genotype, GenotypeError, canonicalise, from_json, from_key
from searchspace.__main__ import main as searchspace_main

CBAM_OPS = {
    "channel_squeeze": "avg_max",
    "channel_excitation": "fc_relu_fc",
    "spatial_squeeze": "mean_max",
    "spatial_excitation": "conv7x7",
}


def document(**changes):
    data = {"format": "sase-genotype", "version": 1, "search_space": "sase-v1", "ops": dict(CBAM_OPS)}
    data.update(changes)
    return data


def test_json_round_trip_keeps_ops_and_metadata():
    genotype = from_key("avg_max|fc_relu_fc|mean_max|conv7x7").with_metadata(run_id="r1", rank=1, reward=0.93)
    again = from_json(genotype.to_json())
    assert again == genotype
    assert again.metadata == {"run_id": "r1", "rank": 1, "reward": 0.93}
    assert json.loads(genotype.to_json())["ops"] == CBAM_OPS


def test_key_string_order_is_designs():
    assert Genotype(**CBAM_OPS).key == "avg_max|fc_relu_fc|mean_max|conv7x7"


def test_canonical_form_drops_excitation_of_absent_branch():
    g = canonicalise(Genotype("none", "fc_relu_fc", "none", "conv7x7"))
    assert g.key == "none|none|none|none"
    assert g == searchspace.KNOWN["none"]
    assert from_key("none|eca|mean|conv3x3").key == "none|none|mean|conv3x3"
    # parsers always hand back the canonical form, so equal genotypes compare equal
    assert from_key("gap|eca|none|conv7x7") == from_key("gap|eca|none|none")
    assert hash(from_key("gap|eca|none|conv7x7")) == hash(from_key("gap|eca|none|none"))


def test_metadata_does_not_change_identity():
    g = from_key("gap|fc_relu_fc|none|none")
    assert g.with_metadata(reward=1.0) == g


def test_all_genotypes_are_distinct_canonical_and_counted():
    genotypes = list(searchspace.all_genotypes())
    assert len(genotypes) == len(set(genotypes)) == searchspace.space_size() >= 1000
    assert all(canonicalise(g) == g for g in genotypes)


BAD_DOCUMENTS = [
    ("[1, 2]", "must be a JSON object, got array"),
    ('"gap"', "must be a JSON object, got string"),
    (json.dumps(document(format="other")), "'format' must be 'sase-genotype'"),
    (json.dumps(document(version=2)), "'version' must be 1, got 2"),
    (json.dumps(document(search_space="sase-v0")), "'search_space' must be one of sase-v1, got 'sase-v0'"),
    (json.dumps({k: v for k, v in document().items() if k != "ops"}), "missing key 'ops'"),
    (json.dumps(document(ops={k: v for k, v in CBAM_OPS.items() if k != "spatial_squeeze"})),
     "'ops' is missing key 'spatial_squeeze'"),
    (json.dumps(document(ops={**CBAM_OPS, "depth": "3"})), "'ops' has unknown key 'depth'"),
    (json.dumps(document(ops={**CBAM_OPS, "channel_squeeze": "median"})),
     "'ops.channel_squeeze': unknown op 'median'; valid: none, gap"),
    (json.dumps(document(ops={**CBAM_OPS, "spatial_excitation": 7})), "'ops.spatial_excitation': unknown op 7"),
    (json.dumps(document(ops=["gap"])), "'ops' must be an object, got list"),
    (json.dumps(document(metadata=[1])), "'metadata' must be an object, got array"),
    (json.dumps(document(extra=1)), "unknown key 'extra'"),
]


@pytest.mark.parametrize("text, message", BAD_DOCUMENTS)
def test_bad_documents_are_refused_with_a_message_naming_the_key(text, message):
    with pytest.raises(GenotypeError) as err:
        from_json(text)
    assert isinstance(err.value, ValueError)
    assert message in str(err.value)


def test_malformed_json_is_refused():
    with pytest.raises(GenotypeError, match="malformed JSON: .* line 1 column"):
        from_json('{"format": ')


def test_unknown_op_message_lists_every_valid_op():
    with pytest.raises(GenotypeError) as err:
        from_key("gap|fc_relu_fc|none|sobel")
    for name in searchspace.SPATIAL_EXCITATION.names():
        assert name in str(err.value)


@pytest.mark.parametrize("text, message", BAD_DOCUMENTS + [('{"format": ', "malformed JSON")])
def test_validate_cli_gives_one_error_line_and_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "g.json"
    path.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        searchspace_main(["validate", str(path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err and str(path) in err


def test_validate_cli_accepts_a_good_file_and_refuses_a_missing_one(tmp_path, capsys):
    path = tmp_path / "cbam.json"
    path.write_text(searchspace.KNOWN["cbam"].to_json())
    assert searchspace_main(["validate", str(path)]) == 0
    assert "avg_max|fc_relu_fc|mean_max|conv7x7" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        searchspace_main(["validate", str(tmp_path / "missing.json")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


def test_list_json_names_every_registry_op_and_the_space_size(capsys):
    searchspace_main(["list", "--json"])
    listing = json.loads(capsys.readouterr().out)
    assert listing["search_space"] == "sase-v1"
    assert listing["genotypes"] == searchspace.space_size()
    assert listing["ops"] == {r.decision: r.names() for r in searchspace.DECISIONS}
    assert listing["known"]["se"] == "gap|fc_relu_fc|none|none"


def test_cli_end_to_end_without_traceback(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document(version=3)))
    bad = subprocess.run([sys.executable, "-m", "searchspace", "validate", str(path)], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"error: {path}: 'version' must be 1, got 3"]
    usage = subprocess.run([sys.executable, "-m", "searchspace", "frobnicate"], capture_output=True, text=True)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1
    listing = subprocess.run([sys.executable, "-m", "searchspace", "list"], capture_output=True, text=True)
    assert listing.returncode == 0
    assert f"{searchspace.space_size()} distinct canonical genotypes" in listing.stdout
