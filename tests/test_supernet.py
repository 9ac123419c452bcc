"""The supernet computes exactly what the stand-alone network of each genotype computes."""
import math

import pytest
import torch

import searchspace
from evaluator.supernet import Supernet, frozen_bn_statistics
from evaluator.training import Reward, mean_reward, reward
from searchspace import from_key


@pytest.fixture(scope="module", params=[False, True], ids=["shared-excitations", "excitation-per-squeeze"])
def supernet(request):
    torch.manual_seed(0)
    net = Supernet("resnet20", num_classes=10, excitation_per_squeeze=request.param).double()
    # move BN's affine terms and statistics off their initial values, so the copy is really tested
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.weight.add_(0.1 * torch.randn_like(module.weight))
                module.bias.add_(0.1 * torch.randn_like(module.bias))
                module.running_mean.add_(0.1 * torch.randn_like(module.running_mean))
                module.running_var.mul_(1 + 0.2 * torch.rand_like(module.running_var))
    return net


def genotypes_covering_every_op():
    """Each op of each set appears in at least one genotype, plus the known modules."""
    picks = list(searchspace.KNOWN.values())
    for registry in searchspace.DECISIONS:
        for name in registry.names():
            ops = dict(searchspace.KNOWN["cbam"].ops)
            ops[registry.decision] = name
            picks.append(searchspace.from_ops(ops))
    return picks


@pytest.mark.parametrize("genotype", genotypes_covering_every_op(), ids=lambda g: g.key)
def test_extracted_network_matches_the_supernet(supernet, genotype):
    network = supernet.extract(genotype)
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    supernet.eval(), network.eval()
    torch.testing.assert_close(supernet(x, genotype), network(x), rtol=0, atol=1e-10)
    with frozen_bn_statistics(supernet), frozen_bn_statistics(network):
        torch.testing.assert_close(supernet(x, genotype), network(x), rtol=0, atol=1e-10)


def test_parameters_of_counts_the_stand_alone_network(supernet):
    g = from_key("avg_max|fc_relu_fc|mean_max|conv7x7")
    assert supernet.parameters_of(g) == sum(p.numel() for p in supernet.extract(g).parameters())
    assert supernet.parameters_of(searchspace.KNOWN["none"]) < supernet.parameters_of(g)


def test_reward_leaves_running_statistics_alone(supernet):
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    x = torch.randn(8, 3, 32, 32, dtype=torch.float64)
    result = reward(supernet, from_key("gap|eca|mean|conv3x3"), x, torch.arange(8) % 10)
    assert result.status == "ok" and 0.0 <= result.reward <= 1.0
    for name, tensor in supernet.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_non_finite_forward_gives_status_nan_and_reward_zero(supernet):
    x = torch.full((4, 3, 32, 32), float("nan"), dtype=torch.float64)
    result = reward(supernet, from_key("gap|fc_relu_fc|none|none"), x, torch.zeros(4, dtype=torch.long))
    assert (result.status, result.reward) == ("nan", 0.0)


def test_mean_reward_weights_batches_by_size():
    parts = [(Reward(1.0, 1.0, 0.5, "ok"), 3), (Reward(0.0, 0.0, 1.5, "ok"), 1)]
    assert mean_reward(parts) == Reward(0.75, 0.75, 0.75, "ok")
    assert mean_reward(parts + [(Reward(0.0, 0.0, float("nan"), "nan"), 2)]).status == "nan"


def test_excitation_per_squeeze_keeps_each_pairs_weights_apart():
    """A step on one (squeeze, excitation) pair leaves the same excitation under another squeeze alone."""
    torch.manual_seed(0)
    net = Supernet("resnet20", num_classes=10, excitation_per_squeeze=True)
    trained, other = from_key("gap|fc_relu_fc|mean|conv7x7"), from_key("gmp|fc_relu_fc|max|conv7x7")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net(torch.randn(4, 3, 32, 32), trained).sum().backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert any(".channel_excitation.gap.fc_relu_fc." in k for k in changed)
    assert any(".spatial_excitation.mean.conv7x7." in k for k in changed)
    assert not any(".gmp." in k or ".spatial_excitation.max." in k for k in changed)
    shared = Supernet("resnet20", num_classes=10)
    assert sum(p.numel() for p in net.parameters()) > sum(p.numel() for p in shared.parameters())
    assert net.parameters_of(other) == shared.parameters_of(other)  # the stand-alone network is the same


def test_a_seed_draws_the_slot_in_the_order_of_the_four_sets():
    """A seed's initial weights are those it gave before per-squeeze excitations existed: the ops
    are drawn set by set (channel squeeze, channel excitation, spatial squeeze, spatial excitation)."""
    from evaluator.supernet import AttentionSlot
    from searchspace import GATE_BIAS, initial_logit

    options = dict(reduction=16, gate_bias=initial_logit("sequential", GATE_BIAS))
    torch.manual_seed(3)
    drawn = {}
    for registry, prefix in zip(searchspace.DECISIONS, ("channel_squeeze", "channel_excitation",
                                                         "spatial_squeeze", "spatial_excitation")):
        extra = {"in_channels": 4} if prefix == "spatial_excitation" else {}  # the widest spatial squeeze
        for name in registry.names():
            if name != "none" or prefix.endswith("excitation"):
                for key, value in registry.build(name, 32, **options, **extra).state_dict().items():
                    drawn[f"{prefix}.{name}.{key}"] = value
    torch.manual_seed(3)
    slot = AttentionSlot(32).state_dict()
    assert list(slot) == list(drawn)
    for key, value in drawn.items():
        assert torch.equal(slot[key], value), key


def test_the_loss_spread_is_the_per_image_losses_sd_pooled_over_batches():
    """What a likelihood reward's standard error is made of: the sd of the per-image cross-entropies,
    the same whether the images came in one batch or several."""
    torch.manual_seed(0)
    supernet = Supernet("resnet20", num_classes=10).double().eval()
    genotype = from_key("gap|fc_relu_fc|mean|conv7x7")
    x = torch.randn(10, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(10) % 10
    losses = torch.nn.functional.cross_entropy(supernet(x, genotype), labels, reduction="none")
    whole = reward(supernet, genotype, x, labels, batch_statistics=False)
    assert whole.val_loss_sd == pytest.approx(losses.std(correction=0).item(), rel=1e-9)
    assert whole.val_loss == pytest.approx(losses.mean().item(), rel=1e-9)
    parts = [(reward(supernet, genotype, x[a:b], labels[a:b], batch_statistics=False), b - a)
             for a, b in ((0, 3), (3, 4), (4, 10))]
    pooled = mean_reward(parts, "likelihood")
    assert pooled.val_loss_sd == pytest.approx(whole.val_loss_sd, rel=1e-9)
    assert pooled.reward == pytest.approx(math.exp(-whole.val_loss), rel=1e-9)
    assert mean_reward(parts + [(Reward(0.5, 0.5, 1.0, "ok"), 2)]).val_loss_sd is None  # one part unmeasured


def test_a_likelihood_reward_is_exp_of_minus_the_image_weighted_loss():
    parts = [(Reward(0.5, 0.5, 1.0, "ok"), 2), (Reward(1.0, 1.0, 0.25, "ok"), 6)]
    likelihood = mean_reward(parts, "likelihood")
    assert likelihood.reward == pytest.approx(math.exp(-(2 * 1.0 + 6 * 0.25) / 8))
    assert (likelihood.val_accuracy, likelihood.val_loss) == (0.875, pytest.approx(0.4375))
    assert mean_reward(parts).reward == 0.875  # the default: the accuracy
