"""The controller's policy and REINFORCE: seeded sampling, canonical log-probabilities, resume, learning."""
import io
from collections import Counter

import pytest
import torch

from controller import ControllerConfig, Decision, DecisionSpace, LSTMPolicy, RandomPolicy, Reinforce, preset
from controller.presets import PRESETS


def options(k):
    return ("none",) + tuple(f"op{i}" for i in range(1, k))


def branched_space(sizes=(4, 3, 3, 3)):
    """Two branches as in SASE: an excitation is moot when its squeeze is `none`."""
    return DecisionSpace([
        Decision("cs", options(sizes[0])),
        Decision("ce", options(sizes[1]), branch_of="cs"),
        Decision("ss", options(sizes[2])),
        Decision("se", options(sizes[3]), branch_of="ss"),
    ])


def policy(space=None, seed=0, **kwargs):
    return LSTMPolicy(space or branched_space(), generator=torch.Generator().manual_seed(seed), **kwargs)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def test_sampling_is_deterministic_under_a_seed():
    first = policy(seed=0).sample(64, seeded(7))
    again = policy(seed=0).sample(64, seeded(7))
    other = policy(seed=0).sample(64, seeded(8))
    assert torch.equal(first.indices, again.indices)
    assert torch.equal(first.log_prob, again.log_prob) and torch.equal(first.entropy, again.entropy)
    assert first.genotypes == again.genotypes
    assert not torch.equal(first.indices, other.indices)


def test_log_prob_of_a_sample_is_the_log_prob_it_was_drawn_with():
    pol = policy()
    samples = pol.sample(32, seeded(1))
    log_prob, entropy = pol.evaluate(samples.indices)
    torch.testing.assert_close(log_prob, samples.log_prob)
    torch.testing.assert_close(entropy, samples.entropy)
    assert log_prob.requires_grad
    torch.testing.assert_close(pol.log_prob(samples.genotypes), samples.log_prob)


def test_samples_are_canonical_and_moot_choices_do_not_change_the_log_prob():
    space = branched_space()
    pol = policy(space)
    samples = pol.sample(200, seeded(2))
    for cs, ce, ss, se in samples.genotypes:
        assert cs != 0 or ce == 0
        assert ss != 0 or se == 0
    # A branch switched off: every raw excitation gives the canonical genotype's log-prob.
    raw = torch.tensor([[0, ce, 2, 1] for ce in range(3)])
    torch.testing.assert_close(pol.log_prob(raw), pol.log_prob(torch.tensor([[0, 0, 2, 1]])).expand(3))
    # So the canonical genotypes' probabilities add up to one.
    every = space.all_indices()
    assert len(every) == (1 + 3 * 3) * (1 + 2 * 3)
    torch.testing.assert_close(pol.log_prob(every).exp().sum(), torch.tensor(1.0))


def test_sample_frequencies_match_the_canonical_probabilities():
    space = branched_space()
    pol = policy(space, tanh_constant=None)
    n = 20000
    counts = Counter(pol.sample(n, seeded(3)).genotypes)
    every = space.all_indices()
    expected = pol.log_prob(every).exp().detach()
    observed = torch.tensor([counts[tuple(row)] / n for row in every.tolist()])
    assert (observed - expected).abs().max() < 0.01


def test_draws_consume_the_same_random_numbers_whatever_they_choose():
    generators = [seeded(4), seeded(4)]
    policy(seed=0).sample(50, generators[0])
    policy(seed=1, tanh_constant=None, temperature=0.1).sample(50, generators[1])
    assert torch.equal(generators[0].get_state(), generators[1].get_state())


def test_probabilities_sum_to_one_and_greedy_takes_their_argmax():
    pol = policy(seed=5, tanh_constant=None, init_range=1.0)
    probabilities = pol.probabilities()
    assert list(probabilities) == ["cs", "ce", "ss", "se"]
    for p in probabilities.values():
        torch.testing.assert_close(p.sum(), torch.tensor(1.0))
    # The greedy path is the argmax of each distribution as long as no branch is switched off.
    greedy = pol.greedy()
    assert greedy[0] == int(probabilities["cs"].argmax())
    assert greedy[2] == int(probabilities["ss"].argmax())


def first_step_logits(pol):
    h, _ = pol.cell(pol.start)
    return pol.heads[0](h)[0]


@pytest.mark.parametrize("tanh_constant, temperature", [(1.5, None), (2.5, 5.0), (None, 0.5), (None, None)])
def test_probabilities_are_the_squashed_softmax(tanh_constant, temperature):
    pol = policy(seed=6, tanh_constant=tanh_constant, temperature=temperature, init_range=1.0)
    logits = first_step_logits(pol).detach()
    if temperature is not None:
        logits = logits / temperature
    if tanh_constant is not None:
        logits = tanh_constant * torch.tanh(logits)
    torch.testing.assert_close(pol.probabilities()["cs"], torch.softmax(logits, dim=0))


def test_tanh_constant_bounds_how_sure_a_decision_can_be():
    pol = policy(seed=7, tanh_constant=1.5)
    with torch.no_grad():
        pol.heads[0].weight.mul_(1e3)
        pol.heads[0].bias.mul_(1e3)
    p = pol.probabilities()["cs"]
    assert p.max() / p.min() <= torch.exp(torch.tensor(2 * 1.5)) * (1 + 1e-5)


def test_weights_start_within_the_init_range():
    pol = policy(init_range=0.1)
    assert all(p.abs().max() <= 0.1 for p in pol.parameters())


def test_ema_baseline_is_taken_before_each_samples_own_reward():
    config = ControllerConfig(baseline_decay=0.5, entropy_weight=0.0)
    trainer = Reinforce(policy(), config)
    stats = trainer.update(torch.zeros(3, 4, dtype=torch.long), [1.0, 1.0, 0.0])
    torch.testing.assert_close(stats["baseline"], torch.tensor([0.0, 0.5, 0.75], dtype=torch.float64))
    torch.testing.assert_close(stats["advantage"], torch.tensor([1.0, 0.5, -0.75], dtype=torch.float64))
    assert trainer.baseline == 0.375 and trainer.updates == 1


def test_entropy_bonus_is_added_to_the_reward():
    pol = policy()
    samples = pol.sample(4, seeded(8))
    stats = Reinforce(pol, ControllerConfig(entropy_weight=0.1)).update(samples.indices, [0.5] * 4)
    torch.testing.assert_close(stats["reward"], 0.5 + 0.1 * samples.entropy.double())


def test_an_update_makes_the_better_sample_more_likely():
    pol = policy(tanh_constant=None)
    better, worse = torch.tensor([[1, 2, 1, 1]]), torch.tensor([[2, 1, 2, 2]])
    before = pol.log_prob(better).item(), pol.log_prob(worse).item()
    config = ControllerConfig(lr=0.01, baseline="batch_mean", tanh_constant=None)
    Reinforce(pol, config).update(torch.cat([better, worse]), [0.9, 0.6])
    assert pol.log_prob(better).item() > before[0]
    assert pol.log_prob(worse).item() < before[1]


def test_bad_rewards_are_refused():
    trainer = Reinforce(policy(), PRESETS["enas"])
    with pytest.raises(ValueError, match="finite reward"):
        trainer.update(torch.zeros(2, 4, dtype=torch.long), [0.5, float("nan")])
    with pytest.raises(ValueError, match="one finite reward per sample"):
        trainer.update(torch.zeros(2, 4, dtype=torch.long), [0.5])


def train(trainer, generator, updates, reward):
    for _ in range(updates):
        samples = trainer.policy.sample(10, generator)
        trainer.update(samples.indices, reward(samples.indices))


def test_state_dict_round_trip_resumes_bit_identically():
    config = ControllerConfig(lr=0.05, grad_clip=1.0)
    reward = lambda indices: 0.5 + 0.1 * indices.sum(dim=1).double()  # noqa: E731
    trainer, generator = Reinforce(policy(seed=0), config), seeded(9)
    train(trainer, generator, 3, reward)
    buffer = io.BytesIO()
    torch.save({"controller": trainer.state_dict(), "rng": generator.get_state()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    resumed, resumed_generator = Reinforce(policy(seed=1), config), torch.Generator()
    resumed.load_state_dict(saved["controller"])
    resumed_generator.set_state(saved["rng"])
    def next_update(run, gen):
        samples = run.policy.sample(10, gen)
        return samples, run.update(samples.indices, reward(samples.indices))

    (samples, stats), (resumed_samples, resumed_stats) = next_update(trainer, generator), next_update(
        resumed, resumed_generator
    )
    assert torch.equal(samples.indices, resumed_samples.indices)
    assert torch.equal(samples.log_prob, resumed_samples.log_prob)
    for key in ("baseline", "advantage", "reward"):
        assert torch.equal(stats[key], resumed_stats[key])
    assert stats["loss"] == resumed_stats["loss"] and resumed.updates == 4
    for a, b in zip(trainer.policy.parameters(), resumed.policy.parameters()):
        assert torch.equal(a, b)


def structured_rewards(space, seed=0):
    """Accuracy-like rewards of every canonical genotype: per-decision terms plus a squeeze x
    excitation interaction; returns (every canonical index row (N, D), rewards (N,))."""
    g = seeded(seed)
    terms = [0.1 * torch.rand(k, generator=g, dtype=torch.float64) for k in space.sizes]
    interaction = 0.1 * torch.rand(space.sizes[0], space.sizes[1], generator=g, dtype=torch.float64)
    every = space.all_indices()
    rewards = 0.6 + sum(t[every[:, d]] for d, t in enumerate(terms)) + interaction[every[:, 0], every[:, 1]]
    return every, rewards


def probability_of_best_while_training(pol, config, updates, seed=10, learner=Reinforce):
    space = pol.space
    every, table = structured_rewards(space)
    row_of = {tuple(row): i for i, row in enumerate(every.tolist())}
    best = every[table.argmax()][None]
    reward = lambda indices: table[[row_of[tuple(r)] for r in indices.tolist()]]  # noqa: E731
    trainer, generator, curve = learner(pol, config), seeded(seed), []
    for _ in range(updates):
        train(trainer, generator, 1, reward)
        curve.append(pol.log_prob(best).exp().item())
    return curve


def test_reinforce_finds_the_best_genotype_and_random_sampling_does_not():
    space = branched_space((8, 7, 6, 6))
    every, table = structured_rewards(space)
    assert len(every) == 50 * 31 and (table == table.max()).sum() == 1
    config = ControllerConfig(tanh_constant=None, lr=0.05, baseline="batch_mean", entropy_weight=0.0)
    learned = probability_of_best_while_training(LSTMPolicy.from_config(space, config, seeded(1)), config, 60)
    assert max(learned) > 0.9
    uniform = probability_of_best_while_training(RandomPolicy(space), config, 60)
    assert max(uniform) == pytest.approx(1 / (8 * 7 * 6 * 6))


def test_sase_preset_settles_on_the_best_genotype_in_fewer_updates_than_enas():
    space = branched_space((8, 7, 6, 6))
    curves = {
        name: probability_of_best_while_training(LSTMPolicy.from_config(space, config, seeded(1)), config, 40)
        for name, config in PRESETS.items()
    }
    assert max(curves["sase"]) > 0.9
    assert max(curves["enas"]) < 0.9  # its tanh constant 1.5 caps an 8-way decision at p = 0.74


def test_presets_are_found_by_name_and_refuse_unknown_settings():
    assert preset("enas") == PRESETS["enas"]
    enas = PRESETS["enas"]
    assert (enas.hidden, enas.tanh_constant, enas.temperature, enas.entropy_weight) == (64, 1.5, None, 1e-4)
    assert (enas.baseline_decay, enas.lr, enas.betas, enas.eps) == (0.99, 3.5e-3, (0.0, 0.999), 1e-3)
    assert (enas.init_range, enas.baseline, enas.grad_clip) == (0.1, "ema", None)
    assert preset("enas", lr=0.05).lr == 0.05
    with pytest.raises(KeyError, match="learning_rate"):
        preset("enas", learning_rate=0.05)
    with pytest.raises(KeyError, match="unknown controller preset"):
        preset("nope")


def test_real_space_policy_samples_canonical_genotypes():
    import searchspace

    space = DecisionSpace.sase()
    assert space.sizes == tuple(len(r.names()) for r in searchspace.DECISIONS)
    assert len(space.all_indices()) == searchspace.space_size()
    pol = LSTMPolicy.sase(PRESETS["enas"], seeded(0))
    samples = pol.sample(50, seeded(11))
    assert all(g == searchspace.canonicalise(g) for g in samples.genotypes)
    torch.testing.assert_close(pol.log_prob(samples.genotypes), samples.log_prob)
    every = list(searchspace.all_genotypes())
    torch.testing.assert_close(pol.log_prob(every).exp().sum(), torch.tensor(1.0))
    assert isinstance(pol.greedy(), searchspace.Genotype)
    assert set(RandomPolicy.sase().sample(200, seeded(12)).genotypes) <= set(every)
