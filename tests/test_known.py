"""Known modules as genotypes: each SASEBlock equals its paper's formula, written out here by hand.

Each reference below is a plain function of the input and the weights, following the paper's
equations; the block's (randomised) weights are copied into it.
"""
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

import searchspace
from searchspace import GATE_BIAS, KNOWN, SASEBlock
from searchspace.block import channel_logits, spatial_logits
from searchspace.known import KNOWN_COMBINE, KNOWN_PAPERS

ATOL = 1e-6
EPS = 1e-5  # every BN and LayerNorm here uses PyTorch's default eps


def known_block(name, channels, seed=0):
    """The block of a known module with random weights and BN running statistics, in float64."""
    torch.manual_seed(seed)
    block = SASEBlock(channels, KNOWN[name], combine=KNOWN_COMBINE.get(name, "sequential")).double()
    with torch.no_grad():
        for param in block.parameters():
            param.copy_(torch.randn_like(param) * 0.5)
        for module in block.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn_like(module.running_mean) * 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return block


def batch_norm(x, bn, train, shift=0.0):
    """BN by its definition, per channel (dim 1): batch statistics in training, running ones in eval.

    ``shift`` is a constant a layer added before the BN; the running mean then holds it too.
    """
    dims = [d for d in range(x.dim()) if d != 1]
    if train:
        mean, var = x.mean(dims, keepdim=True), x.var(dims, unbiased=False, keepdim=True)
    else:
        mean = (bn.running_mean + shift).view(1, -1, *[1] * (x.dim() - 2))
        var = bn.running_var.view_as(mean)
    gamma, beta = bn.weight.view(1, -1, *[1] * (x.dim() - 2)), bn.bias.view(1, -1, *[1] * (x.dim() - 2))
    return (x - mean) / torch.sqrt(var + EPS) * gamma + beta


def linear(v, conv):
    """A 1x1 conv's weights used as the paper's fully connected layer W v + b, v: (B, C_in)."""
    out = v @ conv.weight.flatten(1).T
    return out + conv.bias if conv.bias is not None else out


def mlp(v, fc1, fc2):
    """SE's and CBAM's W1 relu(W0 v + b0) + b1."""
    return linear(torch.relu(linear(v, fc1)), fc2)


def channel_gated(x, logits):
    return x * torch.sigmoid(logits)[:, :, None, None]


def se_reference(x, block):
    return channel_gated(x, mlp(x.mean(dim=(2, 3)), block.channel_excitation.fc1, block.channel_excitation.fc2))


def eca_reference(x, block):
    """ECA: omega_c = sigma(sum_j w_j y_{c+j-k//2}), the descriptor zero-padded across channels."""
    y = x.mean(dim=(2, 3))
    w = block.channel_excitation.conv.weight.flatten()
    k = w.numel()
    padded = F.pad(y, (k // 2, k // 2))
    logits = sum(w[j] * padded[:, j : j + y.shape[1]] for j in range(k))
    return channel_gated(x, logits)


def cbam_reference(x, block, train):
    """CBAM: F' = sigma(MLP(avg F) + MLP(max F)) F; F'' = sigma(BN(f7x7([mean F'; max F']))) F'."""
    ex = block.channel_excitation
    f1 = channel_gated(x, mlp(x.mean(dim=(2, 3)), ex.fc1, ex.fc2) + mlp(x.amax(dim=(2, 3)), ex.fc1, ex.fc2))
    maps = torch.cat((f1.mean(dim=1, keepdim=True), f1.amax(dim=1, keepdim=True)), dim=1)
    gate = block.spatial_excitation
    return f1 * torch.sigmoid(batch_norm(F.conv2d(maps, gate.conv.weight, padding=3), gate.bn, train))


def srm_reference(x, block, train):
    """SRM: t = [mu, sigma] with sigma = sqrt(var + eps) over HW; z = sum_i w_ci t_ci; g = sigma(BN(z))."""
    flat = x.flatten(2)
    mu = flat.mean(dim=2)
    sigma = torch.sqrt(((flat - mu[:, :, None]) ** 2).mean(dim=2) + EPS)
    cfc = block.channel_squeeze.cfc
    z = cfc[:, 0] * mu + cfc[:, 1] * sigma
    return channel_gated(x, batch_norm(z, block.channel_excitation.bn, train))


def ge_reference(x, block):
    """GE-theta-minus, global extent: y = x * sigma(gather(x)), gather = parameter-free average."""
    return x * torch.sigmoid(x.mean(dim=(2, 3), keepdim=True))


def bam_reference(x, block, train, biases):
    """BAM: F' = F (1 + sigma(Mc(F) + Ms(F))), with BAM's conv and FC biases before every BN.

    BN cancels those biases in training; in eval they sit in the running means, so each BN's
    running mean is shifted by its bias here, as training with the bias would have made it.
    """
    ex, sq, sp = block.channel_excitation, block.spatial_squeeze, block.spatial_excitation
    hidden = linear(x.mean(dim=(2, 3)), ex.fc1) + biases["fc"]
    mc = linear(torch.relu(batch_norm(hidden, ex.bn, train, biases["fc"])), ex.fc2)
    bias = {name: b.view(1, -1, 1, 1) for name, b in biases.items()}
    r = torch.relu(batch_norm(F.conv2d(x, sq.conv.weight) + bias["reduce"], sq.bn, train, biases["reduce"]))
    d1 = F.conv2d(r, sp.conv1.weight, padding=4, dilation=4) + bias["dilated1"]
    d1 = torch.relu(batch_norm(d1, sp.bn1, train, biases["dilated1"]))
    d2 = F.conv2d(d1, sp.conv2.weight, padding=4, dilation=4) + bias["dilated2"]
    d2 = torch.relu(batch_norm(d2, sp.bn2, train, biases["dilated2"]))
    ms = F.conv2d(d2, sp.conv3.weight, sp.conv3.bias)
    return x * (1 + torch.sigmoid(mc[:, :, None, None] + ms))


def gc_reference(x, block):
    """GCNet: c = sum_j softmax_j(W_k x_j) x_j; t = W_v2 relu(LN(W_v1 c)); here y = x * sigma(t)."""
    mask = torch.einsum("c,bchw->bhw", block.channel_squeeze.conv_mask.weight.flatten(), x)
    attention = torch.softmax(mask.flatten(1), dim=1)
    context = torch.einsum("bcn,bn->bc", x.flatten(2), attention)
    ex = block.channel_excitation
    h = linear(context, ex.fc1)
    mean, var = h.mean(dim=1, keepdim=True), h.var(dim=1, unbiased=False, keepdim=True)
    h = (h - mean) / torch.sqrt(var + EPS) * ex.norm.weight.flatten() + ex.norm.bias.flatten()
    return channel_gated(x, linear(torch.relu(h), ex.fc2))


# FcaNet's published "top" frequency indices on 7x7, its first 16 used (Qin et al. 2021).
FCA_TOP_X = [0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2]
FCA_TOP_Y = [0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2]


def fca_filter(channels, size):
    """FcaNet's DCT filter for a size x size map (7 divides size): channel group i gets frequency i."""
    def basis(t, freq, length):
        value = math.cos(math.pi * freq * (t + 0.5) / length) / math.sqrt(length)
        return value * math.sqrt(2) if freq else value

    scale, part = size // 7, channels // 16
    weights = torch.zeros(channels, size, size, dtype=torch.float64)
    for i, (u, v) in enumerate(zip(FCA_TOP_X, FCA_TOP_Y)):
        for h in range(size):
            for w in range(size):
                weights[i * part : (i + 1) * part, h, w] = basis(h, u * scale, size) * basis(w, v * scale, size)
    return weights


def fca_reference(x, block):
    """FcaNet: Freq_i = sum_hw x_ihw B_hw^{u_i v_i}; att = sigma(fc(Freq)), the SE MLP."""
    freq = (x * fca_filter(x.shape[1], x.shape[2])).sum(dim=(2, 3))
    return channel_gated(x, mlp(freq, block.channel_excitation.fc1, block.channel_excitation.fc2))


@pytest.mark.parametrize("channels", (64, 256))
def test_se_genotype_equals_torchvision_squeeze_excitation(channels):
    torch.manual_seed(0)
    reference = torchvision.ops.SqueezeExcitation(channels, channels // 16)
    block = SASEBlock(channels, KNOWN["se"])
    block.channel_excitation.load_state_dict(reference.state_dict())
    x = torch.randn(4, channels, 7, 9)
    torch.testing.assert_close(block(x), reference(x), rtol=0, atol=ATOL)


@pytest.mark.parametrize("train", (True, False))
@pytest.mark.parametrize("name,reference", [
    ("se", se_reference), ("eca", eca_reference), ("ge", ge_reference), ("gc", gc_reference),
])
def test_channel_modules_match_their_formula(name, reference, train):
    for channels in (64, 256):
        block = known_block(name, channels).train(train)
        x = torch.randn(4, channels, 6, 5, dtype=torch.float64)
        torch.testing.assert_close(block(x), reference(x, block), rtol=0, atol=ATOL)


@pytest.mark.parametrize("train", (True, False))
@pytest.mark.parametrize("name,reference", [("cbam", cbam_reference), ("srm", srm_reference)])
def test_modules_with_batch_norm_match_their_formula(name, reference, train):
    block = known_block(name, 64).train(train)
    x = torch.randn(4, 64, 9, 7, dtype=torch.float64)
    torch.testing.assert_close(block(x), reference(x, block, train), rtol=0, atol=ATOL)


@pytest.mark.parametrize("train", (True, False))
def test_bam_matches_its_formula_with_parallel_branches(train):
    block = known_block("bam", 64).train(train)
    hidden = block.channel_excitation.fc1.out_channels
    torch.manual_seed(1)
    biases = {name: torch.randn(hidden, dtype=torch.float64) for name in ("fc", "reduce", "dilated1", "dilated2")}
    x = torch.randn(4, 64, 9, 10, dtype=torch.float64)
    torch.testing.assert_close(block(x), bam_reference(x, block, train, biases), rtol=0, atol=ATOL)


@pytest.mark.parametrize("size", (7, 14))
def test_fca_matches_fcanet_on_its_map_sizes(size):
    block = known_block("fca", 64)
    x = torch.randn(3, 64, size, size, dtype=torch.float64)
    torch.testing.assert_close(block(x), fca_reference(x, block), rtol=0, atol=ATOL)


def test_none_is_the_identity():
    x = torch.randn(2, 16, 5, 5)
    assert torch.equal(SASEBlock(16, KNOWN["none"])(x), x)


def test_known_modules_are_listed_in_order_with_their_papers():
    assert list(KNOWN)[:7] == ["none", "se", "eca", "cbam", "srm", "bam", "ge"]
    assert {"gc", "fca"} <= set(KNOWN)
    assert set(KNOWN_PAPERS) == set(KNOWN)
    assert all(searchspace.canonicalise(g) == g for g in KNOWN.values())
    assert set(KNOWN_COMBINE) <= set(KNOWN)


def initial_gates(name, x):
    """Mean channel gate and mean spatial gate (None where absent) of a freshly built block."""
    torch.manual_seed(0)
    block = SASEBlock(x.shape[1], KNOWN[name]).train()
    with torch.no_grad():
        channel = spatial = None
        if block.channel_squeeze is not None:
            gate = torch.sigmoid(channel_logits(x, block.channel_squeeze, block.channel_excitation))
            channel, x = gate.mean().item(), x * gate
        if block.spatial_squeeze is not None:
            spatial = torch.sigmoid(spatial_logits(x, block.spatial_squeeze, block.spatial_excitation)).mean().item()
    return channel, spatial


def test_bam_starts_close_to_the_identity_under_its_parallel_rule():
    """y = x (1 + gate): BAM's identity is a closed gate, so its excitations start at -GATE_BIAS."""
    torch.manual_seed(1)
    x = torch.randn(8, 64, 8, 8)
    ratio = (SASEBlock(64, KNOWN["bam"], combine="parallel").train()(x) / x).mean().item()
    assert 1.0 < ratio < 1.05


@pytest.mark.parametrize("name", ("se", "cbam", "srm", "gc", "fca"))
def test_sequential_known_blocks_start_with_open_gates(name):
    torch.manual_seed(1)
    x = torch.randn(8, 64, 8, 8)
    open_gate = torch.sigmoid(torch.tensor(GATE_BIAS)).item()
    for gate in initial_gates(name, x):
        assert gate is None or gate >= open_gate - 0.05


@pytest.mark.parametrize("name", ("eca", "ge"))
def test_eca_and_ge_start_half_open_as_published(name):
    """Neither has a bias term to open the gate with; kept exact rather than altered."""
    torch.manual_seed(1)
    channel, spatial = initial_gates(name, torch.randn(8, 64, 8, 8))
    assert spatial is None and abs(channel - 0.5) < 0.1
