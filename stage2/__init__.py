"""Stage 2: the search's top-K genotypes and the hand-designed baselines trained from scratch on Ray Tune.

``settings`` (what the user asks), ``plan`` (what is trained), ``retrain`` (the Tune run, the only
module that imports Tune), ``summary`` (per-model figures and the winner, pandas only). This file
imports none of them, so ``stage2.summary`` comes without Tune.
"""
