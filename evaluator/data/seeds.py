"""Seeds derived from several integers (seed, epoch, round, shard ...), one rule for each use."""
from __future__ import annotations

import numpy as np


def derived_seed(*parts: int) -> int:
    """One 63-bit seed from several integers (seed, epoch, split ...), well mixed."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> 1)


def shard_seed(seed: int, round_number: int, shard: int) -> int:
    """The seed of one shard of a round's shared training.

    Kept as the plain arithmetic the search has always used (not ``derived_seed``), so that a run
    resumed from an existing checkpoint draws the same batches as before.
    """
    return seed * 1_000_003 + round_number * 1_009 + shard
