"""Genotypes scored on a run's shared weights as its derive stage scores them, after the search.

The derive stage re-scores a handful of genotypes on the whole validation split; this scores any
genotypes the same way (the run's settings, its data, the newest loadable checkpoint's supernet,
its BN mode) in this process, without Ray, so that a user can ask how the search rates SRM, and
the benchmarks measure the supernet with the code the search uses.
"""
from __future__ import annotations

from typing import Optional, Sequence

import pandas as pd

from evaluator.worker import Evaluator, RewardTask
from rundir import RunDir, RunDirError
from rundir.schemas import reward_se
from search.config import saved_config
from searchspace import KNOWN, from_key


def run_evaluator(rundir: RunDir, checkpoint: bool = True) -> Evaluator:
    """An evaluator with the run's settings and data, holding the shared weights of its newest
    checkpoint (``checkpoint`` False: the supernet's initial weights)."""
    rundir.check()
    evaluator = Evaluator(saved_config(rundir.read_config()).evaluator)
    if checkpoint:
        state = rundir.load_checkpoint()
        if state is None:
            raise RunDirError(f"{rundir.show(rundir.root)}: no checkpoint yet (the search has not finished a round)")
        evaluator.supernet.load_state_dict(state["shared"]["weights"])
    return evaluator


def genotype_key(text: str) -> str:
    """A known module's name (``srm``) or a genotype key (``gap|fc_relu_fc|none|none``), canonical."""
    return KNOWN[text].key if text in KNOWN else from_key(text).key


def score_genotypes(rundir: RunDir, genotypes: Sequence[str], correction_steps: Optional[int] = None,
                    per_image: bool = False) -> pd.DataFrame:
    """Each genotype's whole-validation-split reward, accuracy and loss, best first; ``name`` is the
    known module's where the genotype is one (the supernet scores ops: a known module's own combine
    rule, BAM's parallel one, is the run's here). ``correction_steps``: the per-genotype correction's
    steps instead of the run's ``evaluator.correction_steps`` (evaluator/correction.py).
    ``per_image``: with ``image_loss`` and ``image_correct``, each validation image's figures as the
    derive stage keeps them (what pairs two genotypes' gap, rundir/schemas.py)."""
    keys = list(dict.fromkeys(genotype_key(text) for text in genotypes))
    evaluator = run_evaluator(rundir)
    if correction_steps is not None:
        evaluator.config.correction_steps = correction_steps
    results = evaluator.score(evaluator.supernet.state_dict(), [RewardTask(i, key, -1) for i, key in enumerate(keys)])
    names = {module.key: name for name, module in reversed(list(KNOWN.items()))}
    frame = pd.DataFrame([{
        "genotype": r.genotype, "name": names.get(r.genotype, ""), "reward": r.reward, "val_accuracy": r.val_accuracy,
        "val_loss": r.val_loss, "val_loss_sd": r.val_loss_sd, "val_images": r.images, "status": r.status,
        "note": "; ".join(r.notes), **({"image_loss": r.image_losses, "image_correct": r.image_correct}
                                       if per_image else {})}
        for r in results])
    frame["reward_se"] = reward_se(frame, frame["val_images"])
    return frame.sort_values(["reward", "genotype"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
