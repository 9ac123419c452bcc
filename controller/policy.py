"""The controller's policy: an LSTM that makes the search space's decisions one after another.

Moot decisions. A branch whose squeeze is ``none`` has no excitation, so its excitation choice is
moot: it is still drawn (every sample consumes the same random numbers, whatever it chooses), but
it is replaced by ``none`` (the canonical form), fed to the next step as ``none``, and left out of
the log-probability and the entropy. So two draws of the same canonical genotype have the same
log-probability, ``exp(log_prob)`` summed over the canonical genotypes is 1, and the reward of a
genotype never trains a choice that did not shape it.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from controller.presets import ControllerConfig

NONE = "none"


@dataclass(frozen=True)
class Decision:
    """One step of the policy: a choice among ``options``.

    With ``branch_of`` set, the decision is moot when decision ``branch_of`` chose ``none``, and is
    then ``none`` itself (a branch's excitation, ``branch_of`` its squeeze).
    """

    name: str
    options: Tuple[str, ...]
    branch_of: Optional[str] = None


class DecisionSpace:
    """The decisions in order, their canonical form, and the genotypes they spell.

    ``to_genotype`` turns ``{decision name: option}`` into the caller's genotype object; without
    it a genotype is the tuple of canonical option indices.
    """

    def __init__(
        self, decisions: Sequence[Decision], to_genotype: Optional[Callable[[Dict[str, str]], Any]] = None
    ) -> None:
        self.decisions = tuple(Decision(d.name, tuple(d.options), d.branch_of) for d in decisions)
        self.names = tuple(d.name for d in self.decisions)
        self.sizes = tuple(len(d.options) for d in self.decisions)
        self.to_genotype = to_genotype
        if not self.decisions or min(self.sizes) < 1:
            raise ValueError("a decision space needs at least one decision, each with at least one option")
        # step -> (parent step, the parent's `none` index, this step's `none` index)
        self.branches: Dict[int, Tuple[int, int, int]] = {}
        for step, decision in enumerate(self.decisions):
            if decision.branch_of is None:
                continue
            if decision.branch_of not in self.names[:step]:
                raise ValueError(f"{decision.name}: branch_of {decision.branch_of!r} is not an earlier decision")
            parent = self.names.index(decision.branch_of)
            if NONE not in decision.options or NONE not in self.decisions[parent].options:
                raise ValueError(f"{decision.name} and {decision.branch_of} both need a {NONE!r} option")
            self.branches[step] = (parent, self.decisions[parent].options.index(NONE), decision.options.index(NONE))

    @classmethod
    def sase(cls) -> "DecisionSpace":
        """The SASE space from the four op registries; genotypes are canonical ``Genotype`` objects."""
        from searchspace import BRANCHES, DECISIONS, Genotype

        decisions = [Decision(r.decision, tuple(r.names()), BRANCHES.get(r.decision)) for r in DECISIONS]
        return cls(decisions, to_genotype=lambda ops: Genotype(**ops))

    def live(self, step: int, chosen: Sequence[torch.Tensor]) -> Optional[torch.Tensor]:
        """Rows (n,) whose decision ``step`` matters, given the canonical earlier choices; None: all."""
        if step not in self.branches:
            return None
        parent, parent_none, _ = self.branches[step]
        return chosen[parent] != parent_none

    def canonical_step(self, step: int, raw: torch.Tensor, live: Optional[torch.Tensor]) -> torch.Tensor:
        """(n,) raw choices of ``step`` -> (n,) canonical choices (moot rows become ``none``)."""
        if live is None:
            return raw
        return torch.where(live, raw, torch.full_like(raw, self.branches[step][2]))

    def canonicalise(self, indices: torch.Tensor) -> torch.Tensor:
        """(n, D) option indices -> (n, D) canonical option indices."""
        chosen: List[torch.Tensor] = []
        for step in range(len(self.decisions)):
            chosen.append(self.canonical_step(step, indices[:, step], self.live(step, chosen)))
        return torch.stack(chosen, dim=1)

    def decode(self, indices: torch.Tensor) -> List[Any]:
        """(n, D) canonical indices -> n genotypes."""
        rows = [tuple(int(i) for i in row) for row in indices.tolist()]
        if self.to_genotype is None:
            return rows
        return [self.to_genotype({d.name: d.options[i] for d, i in zip(self.decisions, row)}) for row in rows]

    def encode(self, genotypes: Sequence[Any]) -> torch.Tensor:
        """Genotypes (objects with ``.ops``, ``{name: option}`` mappings or index sequences) -> (n, D)."""
        rows = []
        for genotype in genotypes:
            ops = getattr(genotype, "ops", genotype)
            if isinstance(ops, Mapping):
                rows.append([d.options.index(ops[d.name]) for d in self.decisions])
            else:
                rows.append([int(i) for i in ops])
        return self.canonicalise(torch.tensor(rows, dtype=torch.long).reshape(len(rows), len(self.decisions)))

    def all_indices(self) -> torch.Tensor:
        """(N, D): every canonical choice once, in lexicographic order of the indices."""
        every = torch.tensor(list(itertools.product(*(range(k) for k in self.sizes))), dtype=torch.long)
        return torch.unique(self.canonicalise(every), dim=0)


@dataclass
class Samples:
    """A batch of n genotypes drawn by a policy, with what the policy said about each.

    ``indices`` (n, D) are canonical; ``log_prob`` and ``entropy`` (n,) are summed over the live
    decisions (module docstring) and carry no gradient: :meth:`LSTMPolicy.log_prob` gives one.
    """

    genotypes: List[Any]
    log_prob: torch.Tensor
    entropy: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return len(self.genotypes)


Choices = Union[torch.Tensor, Sequence[Any]]


class LSTMPolicy(nn.Module):
    """ENAS's controller for a fixed sequence of decisions.

    A learned start input feeds an LSTMCell; at step i a linear head turns the hidden state into
    logits over decision i's options, squashed as ``tanh_constant * tanh(logits / temperature)``
    (each part only when set); the option chosen is embedded (one table per decision) and becomes
    the next step's input.
    """

    def __init__(
        self,
        space: DecisionSpace,
        hidden: int = 64,
        tanh_constant: Optional[float] = 1.5,
        temperature: Optional[float] = None,
        init_range: float = 0.1,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__()
        self.space = space
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.cell = nn.LSTMCell(hidden, hidden)
        # The last decision is never fed back, so it has no embedding.
        self.embeddings = nn.ModuleList(nn.Embedding(k, hidden) for k in space.sizes[:-1])
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in space.sizes)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.uniform_(-init_range, init_range, generator=generator)

    @classmethod
    def from_config(
        cls, space: DecisionSpace, config: ControllerConfig, generator: Optional[torch.Generator] = None
    ) -> "LSTMPolicy":
        return cls(space, config.hidden, config.tanh_constant, config.temperature, config.init_range, generator)

    @classmethod
    def sase(cls, config: ControllerConfig, generator: Optional[torch.Generator] = None) -> "LSTMPolicy":
        """The policy over the real search space (the four op registries)."""
        return cls.from_config(DecisionSpace.sase(), config, generator)

    def squash(self, logits: torch.Tensor) -> torch.Tensor:
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def unroll(
        self, n: int, choose: Callable[[int, torch.Tensor], torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """Run the decisions for n rows; ``choose(step, log_probs (n, k)) -> (n,)`` picks each option.

        Returns canonical indices (n, D), summed log-probabilities (n,) and entropies (n,) of the
        live decisions, and each step's probabilities (n, k_i).
        """
        x = self.start.expand(n, -1)
        state = None
        chosen: List[torch.Tensor] = []
        probabilities: List[torch.Tensor] = []
        log_prob = x.new_zeros(n)
        entropy = x.new_zeros(n)
        for step, head in enumerate(self.heads):
            state = self.cell(x, state)
            log_p = F.log_softmax(self.squash(head(state[0])), dim=-1)
            live = self.space.live(step, chosen)
            index = self.space.canonical_step(step, choose(step, log_p), live)
            step_log_prob = log_p.gather(1, index[:, None])[:, 0]
            step_entropy = -(log_p.exp() * log_p).sum(-1)
            if live is not None:
                step_log_prob = torch.where(live, step_log_prob, torch.zeros_like(step_log_prob))
                step_entropy = torch.where(live, step_entropy, torch.zeros_like(step_entropy))
            log_prob = log_prob + step_log_prob
            entropy = entropy + step_entropy
            chosen.append(index)
            probabilities.append(log_p.exp())
            if step < len(self.embeddings):
                x = self.embeddings[step](index)
        return torch.stack(chosen, dim=1), log_prob, entropy, probabilities

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Samples:
        """n genotypes drawn from the policy; the same generator state gives the same samples."""
        def draw(step: int, log_p: torch.Tensor) -> torch.Tensor:
            return torch.multinomial(log_p.exp(), 1, generator=generator)[:, 0]

        indices, log_prob, entropy, _ = self.unroll(n, draw)
        return Samples(self.space.decode(indices), log_prob, entropy, indices)

    def evaluate(self, choices: Choices) -> Tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities (n,) and entropies (n,) of given choices (indices (n, D) or genotypes).

        Differentiable; moot decisions are masked out, so any raw index of a moot decision gives
        the same values as its canonical form.
        """
        indices = choices if isinstance(choices, torch.Tensor) else self.space.encode(choices)
        indices = self.space.canonicalise(indices.long())
        _, log_prob, entropy, _ = self.unroll(len(indices), lambda step, log_p: indices[:, step])
        return log_prob, entropy

    def log_prob(self, choices: Choices) -> torch.Tensor:
        """(n,) differentiable log-probabilities of given choices (indices (n, D) or genotypes)."""
        return self.evaluate(choices)[0]

    @torch.no_grad()
    def greedy(self) -> Any:
        """The genotype that takes the most probable option at every step."""
        indices, _, _, _ = self.unroll(1, lambda step, log_p: log_p.argmax(dim=-1))
        return self.space.decode(indices)[0]

    @torch.no_grad()
    def probabilities(self) -> Dict[str, torch.Tensor]:
        """Each decision's option probabilities (k_i,), the earlier decisions taken greedily.

        A decision that the greedy path makes moot still shows the distribution it is drawn from.
        """
        _, _, _, probabilities = self.unroll(1, lambda step, log_p: log_p.argmax(dim=-1))
        return {name: p[0] for name, p in zip(self.space.names, probabilities)}
