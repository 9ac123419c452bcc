"""The controller service: policy, optimizer and baseline behind propose/update, as a named Ray actor."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import torch

from controller.policy import LSTMPolicy
from controller.ppo import PPO
from controller.presets import ControllerConfig
from controller.random_policy import RandomPolicy
from controller.reinforce import Reinforce

ACTOR_PREFIX = "sase-controller-"
NAMESPACE = "sase-nas"


# The learner each policy name trains with; the random policy has no parameters to train.
LEARNERS = {"rl": Reinforce, "ppo": PPO, "random": Reinforce}


def actor_name(run_id: str) -> str:
    """The service actor of a run is named after it, so another process can attach to it."""
    return ACTOR_PREFIX + run_id


class ControllerService:
    """Owns the policy, its optimizer, the baseline and the sampling RNG of one run.

    ``policy``: ``rl`` (the LSTM policy, REINFORCE), ``ppo`` (the LSTM policy, PPO) or ``random``.
    ``propose(n)`` samples n genotypes; ``update(indices, rewards)`` is one learner step;
    ``state_dict()`` holds everything a checkpoint needs to continue bit for bit.
    """

    def __init__(self, config: ControllerConfig, policy: str, seed: int) -> None:
        init = torch.Generator().manual_seed(seed)
        if policy not in LEARNERS:
            raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(LEARNERS)}")
        self.policy = RandomPolicy.sase() if policy == "random" else LSTMPolicy.sase(config, init)
        self.learner = LEARNERS[policy](self.policy, config)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.round = 0
        self.rewards: Dict[str, List[float]] = {}  # genotype key -> its rewards so far

    def propose(self, n: int) -> Dict[str, Any]:
        samples = self.policy.sample(n, self.generator)
        return {"genotypes": [g.key for g in samples.genotypes], "indices": samples.indices,
                "log_prob": samples.log_prob.double().tolist(), "entropy": samples.entropy.double().tolist()}

    def update(self, round_number: int, indices: torch.Tensor, keys: Sequence[str], rewards: Sequence[float],
               log_prob: Optional[Sequence[float]] = None) -> Dict[str, Any]:
        """``log_prob``: the samples' log-probabilities when proposed; PPO weighs samples drawn by an
        older policy with them (without them it takes the samples as the current policy's)."""
        if isinstance(self.learner, PPO):
            stats = self.learner.update(indices, rewards, log_prob)
        else:
            stats = self.learner.update(indices, rewards)
        for key, reward in zip(keys, rewards):
            self.rewards.setdefault(key, []).append(float(reward))
        self.round = round_number
        return {"reward": stats["reward"].tolist(), "baseline": stats["baseline"].tolist(),
                "advantage": stats["advantage"].tolist(), "loss": stats["loss"], "entropy": stats["entropy"]}

    def status(self, k: int = 5) -> Dict[str, Any]:
        """Round, per-decision probabilities (earlier decisions greedy) and the best genotypes so far."""
        best = sorted(self.rewards.items(), key=lambda item: (-sum(item[1]) / len(item[1]), item[0]))[:k]
        probabilities = self.policy.probabilities()
        return {
            "round": self.round,
            "greedy": self.policy.greedy().key,
            "probabilities": {d.name: dict(zip(d.options, probabilities[d.name].tolist()))
                              for d in self.policy.space.decisions},
            "best": [{"genotype": key, "mean_reward": sum(r) / len(r), "count": len(r)} for key, r in best],
        }

    def state_dict(self) -> Dict[str, Any]:
        return {"learner": self.learner.state_dict(), "generator": self.generator.get_state(),
                "round": self.round, "rewards": {k: torch.tensor(v, dtype=torch.float64) for k, v in self.rewards.items()}}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.generator.set_state(state["generator"])
        self.round = int(state["round"])
        self.rewards = {k: v.tolist() for k, v in state["rewards"].items()}
