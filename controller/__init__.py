"""The controller: the LSTM policy, REINFORCE and PPO, the random baseline and their presets.

Imports torch only; the Ray service is `controller.service`, the search loop the package `search`.
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
