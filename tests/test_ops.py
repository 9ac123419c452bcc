"""The four operation sets: shape contracts, gradients, numerics, weight slicing and the registry."""
import re

import pytest
import torch

import searchspace
from searchspace import CHANNEL_EXCITATION, CHANNEL_SQUEEZE, GATE_BIAS, SPATIAL_EXCITATION, SPATIAL_SQUEEZE
from searchspace.ops.channel_excitation import eca_kernel_size
from searchspace.rules import hidden_channels

CHANNELS = (1, 3, 16, 64)
SIZES = ((1, 1), (3, 5), (7, 7), (8, 8))
BATCH = 2
# The largest S a spatial excitation is built for in these tests: above every squeeze's S here.
IN_CHANNELS = 5

ALL_OPS = [(registry, name) for registry in searchspace.DECISIONS for name in registry.names()]
OP_IDS = [f"{registry.decision}-{name}" for registry, name in ALL_OPS]


def build(registry, name, channels, in_channels=IN_CHANNELS, gate_bias=GATE_BIAS):
    return registry.build(name, channels, reduction=16, gate_bias=gate_bias, in_channels=in_channels)


def op_input(registry, channels, size, s=IN_CHANNELS, batch=BATCH):
    """A random input in the shape the op's set takes."""
    if registry is CHANNEL_EXCITATION:
        return torch.randn(batch, channels, 1, 1)
    if registry is SPATIAL_EXCITATION:
        return torch.randn(batch, s, *size)
    return torch.randn(batch, channels, *size)


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("name", CHANNEL_SQUEEZE.names())
def test_channel_squeeze_gives_declared_descriptors_per_channel(name, channels):
    torch.manual_seed(0)
    op = build(CHANNEL_SQUEEZE, name, channels)
    for h, w in SIZES:
        out = op(torch.randn(BATCH, channels, h, w))
        assert out.shape == (BATCH, channels, op.num_descriptors, 1)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("name", CHANNEL_EXCITATION.names())
def test_channel_excitation_keeps_descriptor_shape(name, channels):
    torch.manual_seed(0)
    op = build(CHANNEL_EXCITATION, name, channels)
    for batch in (2, 6):
        out = op(torch.randn(batch, channels, 1, 1))
        assert out.shape == (batch, channels, 1, 1)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("name", SPATIAL_SQUEEZE.names())
def test_spatial_squeeze_gives_declared_maps(name, channels):
    torch.manual_seed(0)
    op = build(SPATIAL_SQUEEZE, name, channels)
    assert 1 <= op.out_channels <= max(2, hidden_channels(channels, 16))
    for h, w in SIZES:
        out = op(torch.randn(BATCH, channels, h, w))
        assert out.shape == (BATCH, op.out_channels, h, w)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("name", SPATIAL_EXCITATION.names())
def test_spatial_excitation_takes_every_s_up_to_in_channels(name, channels):
    torch.manual_seed(0)
    op = build(SPATIAL_EXCITATION, name, channels)
    for s in range(1, IN_CHANNELS + 1):
        for h, w in SIZES:
            out = op(torch.randn(BATCH, s, h, w))
            assert out.shape == (BATCH, 1, h, w)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize("channels", (3, 16))
@pytest.mark.parametrize("registry,name", ALL_OPS, ids=OP_IDS)
def test_gradients_reach_every_parameter(registry, name, channels):
    torch.manual_seed(0)
    op = build(registry, name, channels).train()
    out = op(op_input(registry, channels, (6, 7), batch=4))
    if not out.requires_grad:
        assert not list(op.parameters())
        return
    (out * torch.randn_like(out)).sum().backward()
    for param_name, param in op.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, f"{param_name} gets no gradient"


@pytest.mark.parametrize("registry,name", ALL_OPS, ids=OP_IDS)
def test_large_inputs_give_finite_outputs_and_gradients(registry, name):
    torch.manual_seed(0)
    op = build(registry, name, 16).train()
    x = (op_input(registry, 16, (7, 7)) * 100).requires_grad_()
    out = op(x)
    assert torch.isfinite(out).all()
    if name == "none" and not out.requires_grad:  # a placeholder that ignores its input
        return
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("train", (True, False))
@pytest.mark.parametrize("name", SPATIAL_EXCITATION.names())
def test_spatial_excitation_for_s_equals_wider_one_with_sliced_weights(name, train):
    """The supernet's promise: one op held for the widest S serves every narrower squeeze."""
    torch.manual_seed(0)
    wide = build(SPATIAL_EXCITATION, name, 16, in_channels=IN_CHANNELS)
    for bn in (m for m in wide.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    for s in range(1, IN_CHANNELS):
        narrow = build(SPATIAL_EXCITATION, name, 16, in_channels=s)
        sliced = {k: v[:, :s] if v.shape != narrow.state_dict()[k].shape else v for k, v in wide.state_dict().items()}
        narrow.load_state_dict(sliced)  # strict: every other shape must not depend on in_channels
        wide.train(train)
        narrow.train(train)
        x = torch.randn(3, s, 6, 5)
        torch.testing.assert_close(narrow(x), wide(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("train", (True, False))
@pytest.mark.parametrize(
    "registry,name",
    [(r, n) for r, n in ALL_OPS if r in (CHANNEL_EXCITATION, SPATIAL_EXCITATION) and n not in ("none", "eca")],
)
def test_gate_bias_is_the_last_additive_term(registry, name, train):
    """Changing gate_bias shifts every logit by exactly the change, so gates start as open as asked."""
    x = op_input(registry, 16, (5, 6), s=2, batch=4)
    outs = []
    for gate_bias in (GATE_BIAS, GATE_BIAS + 3.0):
        torch.manual_seed(0)
        outs.append(build(registry, name, 16, gate_bias=gate_bias).train(train)(x))
    torch.testing.assert_close(outs[1] - outs[0], torch.full_like(outs[0], 3.0), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ("none", "eca"))
def test_ops_without_a_bias_ignore_gate_bias(name):
    """GE-theta-minus's identity and ECA's bias-free conv are kept as published."""
    x = torch.randn(2, 64, 1, 1)
    outs = []
    for gate_bias in (GATE_BIAS, -5.0):
        torch.manual_seed(0)
        outs.append(build(CHANNEL_EXCITATION, name, 64, gate_bias=gate_bias)(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_parameter_free_ops_compute_their_statistic():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 4, 5)
    squeeze = {name: build(CHANNEL_SQUEEZE, name, 6) for name in CHANNEL_SQUEEZE.names()}
    torch.testing.assert_close(squeeze["gap"](x).flatten(), x.mean(dim=(2, 3)).flatten())
    torch.testing.assert_close(squeeze["gmp"](x).flatten(), x.amax(dim=(2, 3)).flatten())
    avg_max = squeeze["avg_max"](x)
    torch.testing.assert_close(avg_max[:, :, 0, 0], x.mean(dim=(2, 3)))
    torch.testing.assert_close(avg_max[:, :, 1, 0], x.amax(dim=(2, 3)))
    spatial = {name: build(SPATIAL_SQUEEZE, name, 6) for name in SPATIAL_SQUEEZE.names()}
    torch.testing.assert_close(spatial["mean_max"](x), torch.cat([x.mean(1, True), x.amax(1, True)], 1))
    std = x.var(dim=1, unbiased=False, keepdim=True).add(1e-5).sqrt()
    torch.testing.assert_close(spatial["mean_std"](x), torch.cat([x.mean(1, True), std], 1))
    torch.testing.assert_close(build(CHANNEL_EXCITATION, "none", 6)(x), x)
    torch.testing.assert_close(build(SPATIAL_EXCITATION, "none", 6)(x), x.mean(1, True))


def test_learnable_pools_span_mean_to_max():
    """GeM (p=1) and LSE (small r) are the mean; large p or r approach the max; SoftPool lies between."""
    torch.manual_seed(0)
    x = torch.rand(2, 4, 5, 5) + 0.1
    mean, peak = x.mean(dim=(2, 3)).flatten(), x.amax(dim=(2, 3)).flatten()
    gem, lse = build(CHANNEL_SQUEEZE, "gem", 4), build(CHANNEL_SQUEEZE, "lse", 4)
    with torch.no_grad():
        gem.p.fill_(1.0)
        lse.sharpness.fill_(1e-2)
        torch.testing.assert_close(gem(x).flatten(), mean)
        torch.testing.assert_close(lse(x).flatten(), mean, rtol=0, atol=1e-3)
        gem.p.fill_(200.0)
        lse.sharpness.fill_(1e3)
        torch.testing.assert_close(gem(x).flatten(), peak, rtol=0, atol=0.05)
        torch.testing.assert_close(lse(x).flatten(), peak, rtol=0, atol=0.01)
    soft = build(CHANNEL_SQUEEZE, "softpool", 4)(x).flatten()
    assert (soft > mean).all() and (soft < peak).all()


def test_dct_pool_is_average_pooling_on_1x1_and_orthonormal_on_7x7():
    torch.manual_seed(0)
    dct = build(CHANNEL_SQUEEZE, "dct", 32)
    x = torch.randn(2, 32, 1, 1)
    torch.testing.assert_close(dct(x), x)
    filters = dct.filters(7, 7, x).flatten(1)  # two channels per frequency
    distinct = filters[::2]
    torch.testing.assert_close(distinct @ distinct.T, torch.eye(16))
    torch.testing.assert_close(filters[1::2], distinct)


@pytest.mark.parametrize("channels,k", [(1, 1), (2, 1), (64, 3), (128, 5), (256, 5), (512, 5), (2048, 7)])
def test_eca_kernel_size_follows_eca(channels, k):
    assert eca_kernel_size(channels) == k
    assert build(CHANNEL_EXCITATION, "eca", channels).conv.kernel_size == (k,)


@pytest.mark.parametrize("channels,reduction,hidden", [(1, 16, 1), (3, 16, 3), (16, 16, 4), (64, 16, 4), (256, 16, 16)])
def test_bottleneck_width_keeps_small_channel_counts_usable(channels, reduction, hidden):
    assert hidden_channels(channels, reduction) == hidden
    assert build(CHANNEL_EXCITATION, "fc_relu_fc", channels).fc1.out_channels == hidden
    assert build(SPATIAL_SQUEEZE, "conv1x1", channels).out_channels == hidden


@pytest.mark.parametrize("registry,name", ALL_OPS, ids=OP_IDS)
def test_every_op_documents_its_origin_and_shapes(registry, name):
    doc = registry[name].__doc__ or ""
    assert registry.describe(name), "first docstring line says where the op comes from"
    assert re.search(r"\(B[^)]*\)\s*->\s*\(", doc) or re.search(r"\(N[^)]*\)\s*->\s*\(", doc), "shape line"


@pytest.mark.parametrize("registry,minimum", [
    (CHANNEL_SQUEEZE, 6), (CHANNEL_EXCITATION, 6), (SPATIAL_SQUEEZE, 5), (SPATIAL_EXCITATION, 5),
])
def test_each_set_is_large_enough_with_none_first_and_two_new_ops(registry, minimum):
    names = registry.names()
    assert names[0] == "none"
    assert len(names) - 1 >= minimum
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", n) and len(n) <= 16 for n in names)
    assert sum(registry.describe(n).startswith("New") for n in names) >= 2


def test_space_holds_over_a_thousand_distinct_canonical_genotypes():
    genotypes = list(searchspace.all_genotypes())
    assert searchspace.space_size() == len(genotypes) >= 1000
    assert len({g.key for g in genotypes}) == len(genotypes)
    assert all(searchspace.canonicalise(g) == g for g in genotypes)
