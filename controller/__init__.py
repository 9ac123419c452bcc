"""The controller: the LSTM policy, REINFORCE, the random baseline and their presets.

Imports torch only; the Ray service and the search loop live in their own modules.
"""
from controller.policy import Decision, DecisionSpace, LSTMPolicy, Samples
from controller.presets import PRESETS, ControllerConfig, preset
from controller.random_policy import RandomPolicy
from controller.reinforce import Reinforce

__all__ = [
    "ControllerConfig", "Decision", "DecisionSpace", "LSTMPolicy", "PRESETS", "RandomPolicy", "Reinforce",
    "Samples", "preset",
]
