"""Evaluator: proxy networks, datasets, the weight-sharing supernet, training and rewards, Ray workers.

Import the submodules directly (``from evaluator.models import build_model``): this package
imports nothing itself, so that ``import evaluator`` pulls in neither torch nor ray.
"""
