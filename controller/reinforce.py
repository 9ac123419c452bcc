"""REINFORCE with a baseline and an entropy bonus, as ENAS trains its controller."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn

from controller.presets import ControllerConfig

Rewards = Union[torch.Tensor, Sequence[float]]


class Reinforce:
    """Owns a policy, its Adam optimizer and the reward baseline; one :meth:`update` per batch.

    Per batch of n samples with rewards R (n,):

    - ``R <- R + entropy_weight * H``, H the sample's summed entropy (a number, no gradient);
    - baselines b (n,): ``ema`` gives sample i the baseline left by samples 0..i-1 (in batch order)
      and then moves it, ``b <- decay * b + (1 - decay) * R_i``; ``batch_mean`` gives every sample
      the batch's mean reward;
    - advantages ``A = R - b``, divided by their standard deviation if ``normalise_advantages``;
    - ``loss = -mean(A * log pi)``, one Adam step, the gradient norm clipped if ``grad_clip``.

    A policy without parameters (the random policy) keeps its distribution; the baseline still moves.
    """

    def __init__(self, policy: nn.Module, config: ControllerConfig) -> None:
        self.policy = policy
        self.config = config
        self.parameters = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = (
            torch.optim.Adam(self.parameters, lr=config.lr, betas=config.betas, eps=config.eps)
            if self.parameters
            else None
        )
        self.baseline = float(config.baseline_init)
        self.updates = 0

    def baselines(self, rewards: torch.Tensor) -> torch.Tensor:
        """(n,) float64 rewards -> (n,) the baseline each sample is compared with; moves the EMA."""
        if self.config.baseline == "batch_mean":
            self.baseline = rewards.mean().item()
            return torch.full_like(rewards, self.baseline)
        before: List[float] = []
        decay = self.config.baseline_decay
        for reward in rewards.tolist():
            before.append(self.baseline)
            self.baseline = decay * self.baseline + (1.0 - decay) * reward
        return torch.tensor(before, dtype=torch.float64)

    def update(self, indices: torch.Tensor, rewards: Rewards) -> Dict[str, Any]:
        """One step on a batch: indices (n, D) as the policy sampled them, rewards (n,).

        Returns the shaped rewards, the baselines before the update and the advantages (each (n,),
        float64, unnormalised), the loss and the batch's mean entropy.
        """
        rewards = self.checked(indices, rewards)
        log_prob, entropy = self.policy.evaluate(indices)
        shaped, baseline, advantage, scaled = self.advantages(rewards, entropy)
        loss = -(scaled.to(log_prob.dtype) * log_prob).mean()
        self.step(loss)
        self.updates += 1
        return {"reward": shaped, "baseline": baseline, "advantage": advantage, "loss": loss.item(),
                "entropy": entropy.mean().item()}

    def checked(self, indices: torch.Tensor, rewards: Rewards) -> torch.Tensor:
        """(n,) float64 rewards, refused unless there is one finite reward per sample."""
        rewards = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1)
        if len(rewards) != len(indices) or not torch.isfinite(rewards).all():
            raise ValueError(f"need one finite reward per sample, got {rewards.tolist()} for {len(indices)} samples")
        return rewards

    def advantages(self, rewards: torch.Tensor, entropy: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(n,) rewards and entropies -> shaped rewards, baselines, advantages and the advantages the
        loss uses (normalised when configured), each (n,) float64; moves the baseline."""
        shaped = rewards + self.config.entropy_weight * entropy.detach().double()
        baseline = self.baselines(shaped)
        advantage = shaped - baseline
        scaled = advantage
        if self.config.normalise_advantages and len(advantage) > 1:
            scaled = advantage / (advantage.std() + 1e-8)
        return shaped, baseline, advantage, scaled

    def step(self, loss: torch.Tensor) -> None:
        """One Adam step on ``loss`` (nothing for a policy without parameters)."""
        if self.optimizer is None:
            return
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.parameters, self.config.grad_clip)
        self.optimizer.step()

    def state_dict(self) -> Dict[str, Any]:
        """Tensors and plain numbers only, so ``torch.load(..., weights_only=True)`` reads it back."""
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else {},
            "baseline": self.baseline,
            "updates": self.updates,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = float(state["baseline"])
        self.updates = int(state["updates"])
