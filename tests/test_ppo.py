"""PPO for the controller: its update, its checkpoint, what it learns, and the names that select it."""
import io

import pytest
import torch

from controller import PPO, ControllerConfig, LSTMPolicy, Reinforce
from search.config import POLICIES, SearchConfig
from controller.presets import PRESETS
from controller.service import ControllerService
from test_policy import branched_space, policy, probability_of_best_while_training, seeded, train

BETTER, WORSE = torch.tensor([[1, 2, 1, 1]]), torch.tensor([[2, 1, 2, 2]])


def test_an_update_makes_the_better_sample_more_likely():
    pol = policy(tanh_constant=None)
    before = pol.log_prob(BETTER).item(), pol.log_prob(WORSE).item()
    config = ControllerConfig(lr=0.01, baseline="batch_mean", tanh_constant=None, entropy_weight=0.0, ppo_epochs=4)
    stats = PPO(pol, config).update(torch.cat([BETTER, WORSE]), [0.9, 0.6])
    assert pol.log_prob(BETTER).item() > before[0]
    assert pol.log_prob(WORSE).item() < before[1]
    assert set(stats) >= {"reward", "baseline", "advantage", "loss", "entropy", "clip_fraction"}
    torch.testing.assert_close(stats["advantage"], torch.tensor([0.15, -0.15], dtype=torch.float64))


def test_one_epoch_is_a_reinforce_step():
    config = ControllerConfig(lr=0.05, baseline="batch_mean", ppo_epochs=1)
    reinforce, ppo = policy(seed=3), policy(seed=3)
    batch = reinforce.sample(10, seeded(4)).indices
    rewards = 0.5 + 0.1 * batch.sum(dim=1).double()
    Reinforce(reinforce, config).update(batch, rewards)
    PPO(ppo, config).update(batch, rewards)
    for a, b in zip(reinforce.parameters(), ppo.parameters()):
        torch.testing.assert_close(a, b)


def test_more_epochs_move_the_policy_further_but_the_clip_bounds_the_ratio():
    moved = {}
    for epochs in (1, 8):
        pol = policy(tanh_constant=None)
        before = pol.log_prob(BETTER).item()
        config = ControllerConfig(lr=0.01, baseline="batch_mean", tanh_constant=None, ppo_epochs=epochs, ppo_clip=0.2)
        PPO(pol, config).update(torch.cat([BETTER, WORSE]), [0.9, 0.6])
        moved[epochs] = pol.log_prob(BETTER).item() - before
    assert moved[8] > moved[1] > 0
    # Once the ratio passes 1 + clip the sample stops pushing; one Adam step of lr 0.01 overshoots little.
    assert moved[8] < 2 * torch.log1p(torch.tensor(0.2)).item()


def test_a_sample_whose_ratio_already_left_the_clip_range_does_not_train():
    pol = policy(tanh_constant=None)
    before = [p.detach().clone() for p in pol.parameters()]
    config = ControllerConfig(lr=0.1, baseline="batch_mean", ppo_epochs=3, ppo_clip=0.2)
    now = pol.log_prob(torch.cat([BETTER, WORSE])).detach()
    # Drawn by an older policy that liked the better sample much less (ratio e) and the worse much
    # more (ratio 1/e): both ratios are past the clip in the direction their advantage pushes.
    stats = PPO(pol, config).update(torch.cat([BETTER, WORSE]), [0.9, 0.6], sampled_log_prob=now + torch.tensor([-1.0, 1.0]))
    assert stats["clip_fraction"] == 1.0
    for a, b in zip(before, pol.parameters()):
        assert torch.equal(a, b)


def test_state_dict_round_trip_resumes_bit_identically():
    config = ControllerConfig(lr=0.05, baseline="batch_mean", ppo_epochs=3)
    reward = lambda indices: 0.5 + 0.1 * indices.sum(dim=1).double()  # noqa: E731
    trainer, generator = PPO(policy(seed=0), config), seeded(9)
    train(trainer, generator, 3, reward)
    buffer = io.BytesIO()
    torch.save({"controller": trainer.state_dict(), "rng": generator.get_state()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed, resumed_generator = PPO(policy(seed=1), config), torch.Generator()
    resumed.load_state_dict(saved["controller"])
    resumed_generator.set_state(saved["rng"])

    train(trainer, generator, 2, reward)
    train(resumed, resumed_generator, 2, reward)
    assert resumed.updates == trainer.updates == 5 and resumed.baseline == trainer.baseline
    for a, b in zip(trainer.policy.parameters(), resumed.policy.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(generator.get_state(), resumed_generator.get_state())


def test_ppo_settles_on_the_best_genotype_of_a_structured_table():
    space = branched_space((8, 7, 6, 6))
    config = PRESETS["sase"]
    curve = probability_of_best_while_training(
        LSTMPolicy.from_config(space, config, seeded(1)), config, 40, learner=PPO)
    assert max(curve) > 0.9


def test_the_service_trains_with_ppo_when_asked_by_name():
    assert "ppo" in POLICIES and SearchConfig(policy="ppo").policy == "ppo"
    service = ControllerService(PRESETS["sase"], "ppo", seed=0)
    assert isinstance(service.learner, PPO)
    twin = ControllerService(PRESETS["sase"], "ppo", seed=0)
    proposal, _ = service.propose(4), twin.propose(4)
    before = service.policy.probabilities()
    rewards = [0.5, 0.6, 0.7, 0.8]
    service.update(1, proposal["indices"], proposal["genotypes"], rewards, log_prob=proposal["log_prob"])
    twin.update(1, proposal["indices"], proposal["genotypes"], rewards)
    assert service.status()["round"] == 1
    assert any(not torch.equal(before[name], p) for name, p in service.policy.probabilities().items())
    # Proposed by the policy being updated: its log-probs change nothing against taking the current ones.
    for a, b in zip(service.policy.parameters(), twin.policy.parameters()):
        torch.testing.assert_close(a, b)
    assert not isinstance(ControllerService(PRESETS["sase"], "rl", seed=0).learner, PPO)
    with pytest.raises(ValueError, match="unknown policy 'greedy'"):
        ControllerService(PRESETS["sase"], "greedy", seed=0)


def test_ppo_settings_do_not_touch_reinforce():
    assert (PRESETS["enas"].ppo_epochs, PRESETS["enas"].ppo_clip) == (4, 0.2)
    batch = policy(seed=2).sample(10, seeded(5)).indices
    rewards = 0.5 + 0.1 * batch.sum(dim=1).double()
    runs = []
    for config in (ControllerConfig(lr=0.05), ControllerConfig(lr=0.05, ppo_epochs=9, ppo_clip=0.5)):
        pol = policy(seed=2)
        Reinforce(pol, config).update(batch, rewards)
        runs.append(list(pol.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    assert PPO(policy(), ControllerConfig(lr=1.0, ppo_lr=0.01)).optimizer.param_groups[0]["lr"] == 0.01
    assert Reinforce(policy(), ControllerConfig(lr=1.0, ppo_lr=0.01)).optimizer.param_groups[0]["lr"] == 1.0
    with pytest.raises(ValueError, match="ppo_epochs"):
        ControllerConfig(ppo_epochs=0)
