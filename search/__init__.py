"""The search driver: its configuration, the loop of rounds over the controller and the evaluators, and the derive stage.

``config`` (``SearchConfig`` from YAML and overrides), ``cluster`` (joining Ray), ``loop`` (a run
from start or checkpoint to its last round), ``derive`` (re-scoring the best, ``winner.json``).
"""
