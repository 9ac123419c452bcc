"""The controller: the LSTM policy, REINFORCE and PPO, the random baseline and their presets.

Imports torch only; the Ray service and the search loop live in their own modules.
"""
from controller.policy import Decision, DecisionSpace, LSTMPolicy, Samples
from controller.ppo import PPO
from controller.presets import PRESETS, ControllerConfig, preset
from controller.random_policy import RandomPolicy
from controller.reinforce import Reinforce

__all__ = [
    "ControllerConfig", "Decision", "DecisionSpace", "LSTMPolicy", "PPO", "PRESETS", "RandomPolicy", "Reinforce",
    "Samples", "preset",
]
