"""The ResNets of evaluator.models: shapes, published parameter counts, where the attention sits, specs."""
import pytest
import torch
import torch.nn as nn
from torchvision.models import resnet as tv

import searchspace
from evaluator.models import (
    ARCHS,
    ATTENTION_BLOCKS,
    ZeroPadShortcut,
    build_model,
    count_parameters,
)

CIFAR_ARCHS = ("resnet20", "resnet32", "resnet56")


def attention_modules(model: nn.Module) -> list:
    return [m.attention for m in model.modules() if isinstance(m, ATTENTION_BLOCKS)]


def se_parameters(channels: int) -> int:
    """SE on C channels: C -> C // 16 -> C, both layers with biases (Hu et al. 2018)."""
    hidden = channels // 16
    return 2 * channels * hidden + hidden + channels


class NegatingSpy(nn.Module):
    """Records its input and returns -2x, so its position shows in the block's output."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.seen = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return -2 * x


@pytest.mark.parametrize("attention", [None, "cbam"])
@pytest.mark.parametrize("arch", CIFAR_ARCHS)
def test_cifar_resnets_map_32x32_images_to_logits(arch, attention):
    torch.manual_seed(0)
    model = build_model(arch, 10, attention).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("attention", [None, "cbam"])
def test_resnet18_maps_64x64_images_to_logits(attention):
    torch.manual_seed(0)
    model = build_model("resnet18", 7, attention).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


def test_without_attention_resnet18_is_torchvisions_resnet18():
    torch.manual_seed(0)
    reference = tv.resnet18(num_classes=10).eval()
    model = build_model("resnet18", 10).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)


def test_resnet50_without_attention_has_torchvisions_parameter_count():
    with torch.device("meta"):
        ours = count_parameters(build_model("resnet50", 1000))
        reference = count_parameters(tv.resnet50())
    assert ours == reference == 25_557_032


def test_se_resnet50_has_the_published_28_09m_parameters():
    with torch.device("meta"):
        count = count_parameters(build_model("resnet50", 1000, "se"))
    stage_widths = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    assert count == 25_557_032 + sum(se_parameters(c) for c in stage_widths)
    assert count == 28_088_024
    assert round(count / 1e6, 2) == 28.09


def test_se_resnet101_has_the_published_49_33m_parameters():
    with torch.device("meta"):
        plain = count_parameters(tv.resnet101())
        count = count_parameters(build_model("resnet101", 1000, "se"))
    stage_widths = [256] * 3 + [512] * 4 + [1024] * 23 + [2048] * 3
    assert count == plain + sum(se_parameters(c) for c in stage_widths)
    assert count == 49_326_872
    assert round(count / 1e6, 2) == 49.33


def test_resnet20_has_0_27m_parameters_and_parameter_free_shortcuts():
    model = build_model("resnet20", 10)
    assert count_parameters(model) == 269_722
    shortcuts = [m for m in model.modules() if isinstance(m, ZeroPadShortcut)]
    assert len(shortcuts) == 2
    assert all(count_parameters(s) == 0 for s in shortcuts)


def test_option_a_shortcut_subsamples_and_zero_pads_new_channels():
    x = torch.randn(2, 16, 7, 7)
    y = ZeroPadShortcut(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert (y[:, 16:] == 0).all()


@pytest.mark.parametrize(
    "arch, layer, index, last_bn",
    [
        ("resnet20", "layer1", 1, "bn2"),  # identity shortcut
        ("resnet20", "layer2", 0, "bn2"),  # option A shortcut
        ("resnet18", "layer2", 0, "bn2"),  # torchvision BasicBlock, 1x1 conv shortcut
        ("resnet50", "layer1", 1, "bn3"),  # Bottleneck, identity shortcut
        ("resnet50", "layer2", 0, "bn3"),  # Bottleneck, 1x1 conv shortcut
    ],
)
def test_attention_takes_last_bn_output_and_is_added_to_the_shortcut_before_relu(arch, layer, index, last_bn):
    torch.manual_seed(0)
    model = build_model(arch, 10, attention_layer=NegatingSpy).eval()
    block = getattr(model, layer)[index]
    assert isinstance(block, (tv.BasicBlock, tv.Bottleneck))
    captured = {}
    # A copy, so an in-place op after the BN would show up as a mismatch.
    getattr(block, last_bn).register_forward_hook(lambda module, args, output: captured.update(bn=output.clone()))
    x = torch.randn(2, block.conv1.in_channels, 8, 8)
    with torch.no_grad():
        y = block(x)
        identity = x if block.downsample is None else block.downsample(x)
    torch.testing.assert_close(block.attention.seen, captured["bn"], rtol=0, atol=0)
    torch.testing.assert_close(y, torch.relu(-2 * captured["bn"] + identity), rtol=0, atol=0)


def test_attention_layer_is_called_once_per_block_with_its_channels():
    calls = []

    def layer(channels: int) -> nn.Module:
        calls.append(channels)
        return NegatingSpy(channels)

    model = build_model("resnet20", 10, attention_layer=layer)
    assert calls == [16] * 3 + [32] * 3 + [64] * 3
    modules = attention_modules(model)
    assert [m.channels for m in modules] == calls
    assert len({id(m) for m in modules}) == 9

    calls.clear()
    with torch.device("meta"):
        build_model("resnet50", 1000, attention_layer=layer)
    assert calls == [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3


def test_attention_accepts_a_name_genotype_key_string_or_json_path(tmp_path):
    se = searchspace.KNOWN["se"]
    path = tmp_path / "se.json"
    path.write_text(se.to_json())
    for spec in ("se", se, se.key, str(path), path):
        modules = attention_modules(build_model("resnet20", 10, spec))
        assert len(modules) == 9
        assert all(isinstance(m, searchspace.SASEBlock) and m.genotype == se for m in modules), spec


@pytest.mark.parametrize("spec", [None, "none", "none|none|none|none", "none|fc_relu_fc|none|none"])
def test_no_attention_is_identity_in_every_block(spec):
    model = build_model("resnet20", 10, spec)
    assert all(type(m) is nn.Identity for m in attention_modules(model))
    assert count_parameters(model) == 269_722


def test_unknown_attention_name_raises_genotype_error():
    with pytest.raises(searchspace.GenotypeError, match="no_such_module") as info:
        build_model("resnet20", 10, "no_such_module")
    assert isinstance(info.value, ValueError)


def test_unknown_arch_raises_value_error_naming_the_valid_ones():
    with pytest.raises(ValueError) as info:
        build_model("resnet19", 10)
    assert all(arch in str(info.value) for arch in ARCHS)


def test_attention_and_attention_layer_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        build_model("resnet20", 10, "se", attention_layer=NegatingSpy)


def test_known_modules_use_their_published_combine_rule_unless_overridden():
    from searchspace.known import KNOWN_COMBINE

    for name, rule in KNOWN_COMBINE.items():
        modules = attention_modules(build_model("resnet20", 10, name))
        assert all(m.combine == rule for m in modules), name
    for name in ("cbam", "bam"):
        modules = attention_modules(build_model("resnet20", 10, name, combine="sequential"))
        assert all(m.combine == "sequential" for m in modules), name
    key = searchspace.KNOWN["cbam"].key
    assert all(m.combine == "sequential" for m in attention_modules(build_model("resnet20", 10, key)))


def test_reduction_and_gate_bias_reach_the_attention_block():
    wide = count_parameters(build_model("resnet20", 10, "se", reduction=4))
    narrow = count_parameters(build_model("resnet20", 10, "se", reduction=16))
    assert wide > narrow > 269_722
    torch.manual_seed(0)
    shut = build_model("resnet20", 10, "se", gate_bias=-30.0).eval()
    block = shut.layer1[0]
    x = torch.randn(2, 16, 8, 8)
    # With the gate closed the residual branch vanishes: the block returns relu(x).
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", ["resnet20", "resnet18"])
def test_attention_keeps_its_own_init_after_the_backbone_init(arch):
    # SRM's BN excitation starts its bias at the gate bias; the backbone's init sets BN biases to 0.
    modules = attention_modules(build_model(arch, 10, "srm", gate_bias=1.5))
    biases = [m.channel_excitation.bn.bias for m in modules]
    assert biases and all(torch.equal(b, torch.full_like(b, 1.5)) for b in biases)
