"""The per-op latency table (evaluator/latency.py): where the slots are, and a genotype's
prediction as the sum of its parts, each read from the table."""
import json

import pytest
import torch

from evaluator.latency import main as latency_main
from evaluator.latency import measure_table, predict_ms, predict_parts, read_table, slot_shapes, write_table
from searchspace import KNOWN, from_key


@pytest.fixture(scope="module")
def table():
    torch.manual_seed(0)
    return measure_table("resnet20", 16, 10, [1, 4], repeats=1)


def test_the_slots_are_the_residual_blocks_in_forward_order():
    shapes = slot_shapes("resnet20", 32, 10)
    assert shapes == [(16, 32, 32)] * 3 + [(32, 16, 16)] * 3 + [(64, 8, 8)] * 3


def test_a_prediction_is_the_backbone_plus_each_slots_ops_and_gate(table):
    g = from_key("avg_max|fc_relu_fc|mean_std|dilated")
    ops, batch = table["ops"], "4"
    k, maps = table["descriptors"]["avg_max"], table["maps"]["mean_std"]
    assert (k, maps) == (2, 2)  # average and max descriptors; mean and standard deviation maps
    by_hand = table["backbone_ms"][batch]
    for c, h, w in table["slots"]:
        by_hand += (ops["channel_squeeze"]["avg_max"][f"{c},{h},{w}"][batch]
                    + ops["channel_excitation"]["fc_relu_fc"][f"{c},{k}"][batch]
                    + ops["spatial_squeeze"]["mean_std"][f"{c},{h},{w}"][batch]
                    + ops["spatial_excitation"]["dilated"][f"{maps},{h},{w}"][batch]
                    + ops["gate"]["sequential:both"][f"{c},{h},{w}"][batch])
    assert predict_ms(table, g, 4) == pytest.approx(by_hand, rel=1e-12)
    assert predict_ms(table, g, 4) == pytest.approx(sum(predict_parts(table, g, 4).values()), rel=1e-12)
    parallel = predict_parts(table, KNOWN["bam"], 1, "parallel")["gate"]
    assert parallel == pytest.approx(sum(ops["gate"]["parallel:both"][f"{c},{h},{w}"]["1"]
                                         for c, h, w in table["slots"]))


def test_the_plain_network_is_the_backbone_and_every_time_is_positive(table):
    assert predict_ms(table, "none|none|none|none", 1) == table["backbone_ms"]["1"] > 0
    values = [v for by_op in table["ops"].values() for by_shape in by_op.values()
              for by_batch in by_shape.values() for v in by_batch.values()]
    assert values and min(values) > 0
    with pytest.raises(ValueError, match="batches 1, 4, not 64"):
        predict_ms(table, "se", 64)


def test_the_table_round_trips_as_json_and_a_stranger_file_is_refused(table, tmp_path):
    path = tmp_path / "latency.json"
    write_table(table, str(path))
    assert read_table(str(path)) == table
    (tmp_path / "other.json").write_text(json.dumps({"format": "sase-genotype"}))
    with pytest.raises(ValueError, match="not a latency table"):
        read_table(str(tmp_path / "other.json"))


def test_the_command_prints_the_table_and_each_genotypes_prediction(table, tmp_path, capsys):
    path = tmp_path / "latency.json"
    write_table(table, str(path))
    assert latency_main(["--table", str(path), "--genotype", "se", "gap|eca|none|none"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("latency table: resnet20 on 16x16")
    se = predict_ms(table, KNOWN["se"].key, 4)
    assert f"se at batch 4: {se:.3f} ms per image" in out and "gap|eca|none|none at batch 1:" in out
