"""What an evaluator needs to know: the data, the proxy network, shared-weight training, resources."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from evaluator.data.registry import DEFAULT_DATASET
from evaluator.training import SharedTrainingConfig
from searchspace import GATE_BIAS

SYNC_RULES = ("step", "round")
REWARD_METRICS = ("accuracy", "likelihood")  # evaluator/training.py mean_reward  # search/loop.py train_shared
BN_MODES = ("batch", "recalibrate")  # evaluator/worker.py Evaluator._score_one


@dataclass
class EvaluatorConfig:
    dataset: str = DEFAULT_DATASET
    data_dir: Optional[str] = None
    download: bool = False
    dataset_options: Dict[str, Any] = field(default_factory=dict)  # the dataset's own settings (sizes, ...)
    arch: str = "resnet20"
    reduction: int = 16
    combine: str = "sequential"
    gate_bias: float = GATE_BIAS
    # The supernet's excitations: one of each kind shared by every squeeze of its branch (False), or
    # one per (squeeze, excitation) pair (True); evaluator/supernet.py says why. Not a search setting
    # of the genotype: its stand-alone network is the same either way.
    excitation_per_squeeze: bool = False
    # Few-shot supernets (evaluator/few_shot.py): "none", one supernet for every genotype; a split's
    # name ("gate_family", "spatial_branch"), one sub-supernet per region of the space, each a copy of
    # the one-shot supernet as it stands after few_shot_from_round rounds (0: split from the start).
    few_shot: str = "none"
    few_shot_from_round: int = 6
    # With a split, which genotypes train the shots after it: "controller", those the controller
    # samples (a shot it rarely samples stops learning); "balanced", every shot an equal share of a
    # round's steps, short shots filled with uniform draws from their region (search/shot_balance.py).
    few_shot_training: str = "controller"
    training: SharedTrainingConfig = field(default_factory=SharedTrainingConfig)
    val_batch_size: int = 256
    # Rewards, measured in docs/ranking_fidelity.md. common_reward_images: a round's samples are all
    # scored on the same reward_images validation images, round r on the r-th block of the split
    # (wrapping), so a batch's difficulty cancels against the batch-mean baseline; False: sample i of
    # round r on its own batch of val_batch_size images, (r - 1) * samples_per_round + i.
    common_reward_images: bool = True
    reward_images: int = 256  # the cost per sample of the val_batch_size batches before
    # What a reward is: "accuracy" on the scored images, or "likelihood", exp(-cross-entropy): the
    # geometric mean of the probability given to the true class, continuous where accuracy counts
    # argmaxes (docs/ranking_fidelity.md measures both).
    reward_metric: str = "accuracy"
    # BN at scoring time: "batch" (the scored batch's statistics) or "recalibrate" (SPOS: running
    # statistics re-estimated per genotype on recalibration_batches training batches, the round's).
    bn_mode: str = "batch"
    recalibration_batches: int = 4
    # Per-genotype correction before a whole-split score (the derive stage, experiments/score.py;
    # evaluator/correction.py): correction_steps SGD steps at a constant correction_lr on the
    # genotype's attention ops and every BN scale and shift, the same training batches for every
    # genotype, the shared weights restored after. 0: off. Rounds' rewards are never corrected.
    correction_steps: int = 0
    correction_lr: float = 0.05
    channels_last: bool = True
    # The generated dataset and its validation split: fixed across search seeds, so that searches of
    # different seeds score the same images (their results pair) and the stand-alone tables' images.
    data_seed: int = 0
    # The supernet's initial weights; None: the search's ``seed`` (SearchConfig fills it in).
    seed: Optional[int] = None
    # Ray resources of one evaluator actor; fractional GPUs share a device between actors.
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    # How workers share a round's training (search/loop.py train_shared): "step" all-reduces the
    # gradients every step; "round" is version 1's mean of the workers' deltas.
    sync: str = "step"
    # With sync "step": how long an actor waits for a peer to join the round's process group or to answer
    # a collective before the round starts again without it. A peer lost before it joined costs this much.
    collective_timeout_s: float = 120.0
    # How many times a reward is computed before it is logged as failed (reward null, left out of the
    # controller's update): a transient fault (a CUDA out-of-memory error beside another job) gets
    # another try, on another actor when one is free.
    score_attempts: int = 3

    @property
    def supernet_seed(self) -> int:
        """The seed of the supernet's initial weights: ``seed``, 0 where nothing set it (outside a search)."""
        return 0 if self.seed is None else self.seed
