"""The per-genotype correction: what it trains, that it leaves the supernet as it found it, and that
the derive stage's whole-split scores use it while the rounds' rewards never do."""
import torch

from evaluator.config import EvaluatorConfig
from evaluator.correction import correcting, correction_parameters, corrected
from evaluator.few_shot import FewShotSupernet
from evaluator.supernet import Supernet
from evaluator.training import SharedTrainingConfig
from evaluator.worker import Evaluator, RewardTask
from searchspace import from_key

MODULATING = "gap|bn|mean|conv7x7"


def test_the_correction_trains_attention_and_batch_norm_only():
    """Attention ops' weights and every BN scale and shift; never a backbone convolution or the classifier."""
    torch.manual_seed(0)
    supernet = Supernet(num_classes=4)
    chosen = {id(p) for p in correction_parameters(supernet)}
    modules = dict(supernet.named_modules())
    for name, parameter in supernet.named_parameters():
        owner = modules[name.rsplit(".", 1)[0]]
        wanted = ".attention." in name or isinstance(owner, torch.nn.BatchNorm2d)
        assert (id(parameter) in chosen) == wanted, name
    assert id(supernet.network.layer1[0].conv1.weight) not in chosen and id(supernet.network.fc.weight) not in chosen


def test_a_corrected_genotype_moves_only_its_correction_and_the_supernet_comes_back():
    torch.manual_seed(0)
    supernet = FewShotSupernet(Supernet(num_classes=4), "gate_family")  # the steps go to the genotype's shot
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    chosen = {id(p) for p in correction_parameters(supernet)}
    batches = [(torch.randn(8, 3, 16, 16), torch.randint(0, 4, (8,))) for _ in range(3)]
    with corrected(supernet, from_key(MODULATING), batches, 3, 0.1, SharedTrainingConfig()):
        moved = {name for name, p in supernet.named_parameters() if not torch.equal(p, before[name])}
        named = dict(supernet.named_parameters())
        assert moved and all(id(named[name]) in chosen for name in moved)
    for name, tensor in supernet.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert all(p.requires_grad for p in supernet.parameters())


def test_a_trajectory_read_in_pieces_reaches_the_weights_of_one_run_of_all_its_steps():
    """advance(2) then advance(3) is corrected(5): the momentum and the batch stream carry over."""
    torch.manual_seed(0)
    supernet = Supernet(num_classes=4)
    batches = [(torch.randn(8, 3, 16, 16), torch.randint(0, 4, (8,))) for _ in range(5)]
    genotype = from_key(MODULATING)
    with corrected(supernet, genotype, batches, 5, 0.1, SharedTrainingConfig()):
        whole = {k: v.clone() for k, v in supernet.state_dict().items()}
    with correcting(supernet, genotype, batches, 0.1, SharedTrainingConfig()) as advance:
        advance(2)
        halfway = {k: v.clone() for k, v in supernet.state_dict().items()}
        advance(3)
        assert all(torch.equal(tensor, whole[name]) for name, tensor in supernet.state_dict().items())
    assert any(not torch.equal(tensor, whole[name]) for name, tensor in halfway.items())


def evaluator(tmp_path, steps):
    return Evaluator(EvaluatorConfig(dataset_options=dict(train_size=128, val_size=96, test_size=32),
                                     data_dir=str(tmp_path), training=SharedTrainingConfig(batch_size=16),
                                     reward_images=32, val_batch_size=32, correction_steps=steps))


def test_whole_split_scores_are_corrected_and_round_rewards_are_not(tmp_path):
    torch.set_num_threads(1)
    plain, fixed = evaluator(tmp_path, 0), evaluator(tmp_path, 4)
    weights = plain.supernet.state_dict()
    whole = [RewardTask(0, MODULATING, -1)]
    round_reward = [RewardTask(0, MODULATING, 1, 32)]
    assert fixed.score(weights, round_reward)[0].val_loss == plain.score(weights, round_reward)[0].val_loss
    first = fixed.score(weights, whole)[0]
    assert first.val_loss != plain.score(weights, whole)[0].val_loss
    assert fixed.score(weights, whole)[0].val_loss == first.val_loss  # the same batches, the same start: the same score
    for name, tensor in fixed.supernet.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
