"""PPO's clipped surrogate for the controller: several epochs over each batch, as NASNet trained it."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, Optional, Sequence, Union

import torch
import torch.nn as nn

from controller.presets import ControllerConfig
from controller.reinforce import Reinforce, Rewards


class PPO(Reinforce):
    """REINFORCE's rewards, baseline and advantages, then ``ppo_epochs`` Adam steps on one batch.

    Each step maximises ``mean(min(r * A, clip(r, 1 - ppo_clip, 1 + ppo_clip) * A))`` with
    ``r = pi(a) / pi_old(a)``, ``pi_old`` the policy that drew the samples. The clip stops a batch
    from pushing a sample's probability further once it has moved by ``ppo_clip``, which is what
    makes the later epochs safe. With one epoch ``r = 1`` and the gradient is REINFORCE's.

    ``sampled_log_prob`` (n,) is each sample's log-probability when it was drawn; without it the
    samples are taken to come from the current policy (the search loop's synchronous rounds). With
    it, samples drawn by an older policy are importance-weighted by ``r`` (clipped as above).

    Adam steps with ``ppo_lr`` when the config sets it (``self.config.lr`` is then ``ppo_lr``).
    """

    def __init__(self, policy: nn.Module, config: ControllerConfig) -> None:
        super().__init__(policy, config if config.ppo_lr is None else replace(config, lr=config.ppo_lr))

    def update(self, indices: torch.Tensor, rewards: Rewards,
               sampled_log_prob: Optional[Union[torch.Tensor, Sequence[float]]] = None) -> Dict[str, Any]:
        """Returns REINFORCE's stats, ``loss`` the first epoch's surrogate loss (before any step),
        and ``clip_fraction`` the share of samples whose ratio left the clip range by the last epoch."""
        rewards = self.checked(indices, rewards)
        log_prob, entropy = self.policy.evaluate(indices)
        old = log_prob.detach() if sampled_log_prob is None else torch.as_tensor(
            sampled_log_prob, dtype=log_prob.dtype).reshape(-1)
        shaped, baseline, advantage, scaled = self.advantages(rewards, entropy)
        scaled = scaled.to(log_prob.dtype)
        low, high = 1.0 - self.config.ppo_clip, 1.0 + self.config.ppo_clip
        losses = []
        for epoch in range(self.config.ppo_epochs):
            if epoch > 0:
                log_prob = self.policy.evaluate(indices)[0]
            ratio = (log_prob - old).exp()
            loss = -torch.min(ratio * scaled, ratio.clamp(low, high) * scaled).mean()
            self.step(loss)
            losses.append(loss.item())
        clipped = ((ratio < low) | (ratio > high)).double().mean().item()
        self.updates += 1
        return {"reward": shaped, "baseline": baseline, "advantage": advantage, "loss": losses[0],
                "entropy": entropy.mean().item(), "clip_fraction": clipped}
