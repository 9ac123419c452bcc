"""The genotype: one op per decision, its canonical form, its key string and its JSON file format."""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Union

from searchspace.ops import CHANNEL_EXCITATION, CHANNEL_SQUEEZE, DECISION_NAMES, DECISIONS, SPATIAL_EXCITATION, SPATIAL_SQUEEZE
from searchspace.rules import BRANCHES, COMBINE_RULES, DEFAULT_COMBINE, GATE_BIAS, NONE
from searchspace.strict_json import dumps, loads

FORMAT = "sase-genotype"
VERSION = 1
SEARCH_SPACE = "sase-v1"
SEARCH_SPACES = (SEARCH_SPACE,)
_TOP_LEVEL_KEYS = ("format", "version", "search_space", "ops", "block", "metadata")
BLOCK_KEYS = ("combine", "gate_bias")


class GenotypeError(ValueError):
    """A genotype (or genotype file) that does not follow docs/formats.md; the message names the key."""


@dataclass(frozen=True)
class Genotype:
    """One op name per decision. Construct through :func:`canonicalise` or the parsers to compare."""

    channel_squeeze: str = "none"
    channel_excitation: str = "none"
    spatial_squeeze: str = "none"
    spatial_excitation: str = "none"
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    # How the block combines its branches and where its gates start ({"combine", "gate_bias"}); None:
    # the defaults. Not part of the genotype's identity: the key string and comparisons are the ops'.
    block: Optional[Mapping[str, Any]] = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        for registry in DECISIONS:
            name = getattr(self, registry.decision)
            if not isinstance(name, str) or name not in registry:
                raise GenotypeError(
                    f"'ops.{registry.decision}': unknown op {name!r}; valid: {', '.join(registry.names())}"
                )

    @property
    def ops(self) -> Dict[str, str]:
        return {name: getattr(self, name) for name in DECISION_NAMES}

    @property
    def key(self) -> str:
        """The four op names joined by ``|``, in docs/formats.md's order."""
        return "|".join(getattr(self, name) for name in DECISION_NAMES)

    @property
    def combine(self) -> str:
        """The block's combine rule: its ``block`` setting, else sequential."""
        return (self.block or {}).get("combine", DEFAULT_COMBINE)

    @property
    def gate_bias(self) -> float:
        """Where the block's gates start: its ``block`` setting, else ``GATE_BIAS``."""
        return float((self.block or {}).get("gate_bias", GATE_BIAS))

    @property
    def has_channel_branch(self) -> bool:
        return self.channel_squeeze != "none"

    @property
    def has_spatial_branch(self) -> bool:
        return self.spatial_squeeze != "none"

    def with_metadata(self, **metadata: Any) -> "Genotype":
        return replace(self, metadata={**self.metadata, **metadata})

    def with_block(self, combine: str = DEFAULT_COMBINE, gate_bias: float = GATE_BIAS) -> "Genotype":
        """This genotype with explicit block settings (what an export writes: what the search used)."""
        return replace(self, block=parse_block({"combine": combine, "gate_bias": gate_bias}))

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "search_space": SEARCH_SPACE,
            "ops": self.ops,
        }
        if self.block is not None:
            data["block"] = dict(self.block)
        if self.metadata:
            data["metadata"] = dict(self.metadata)
        return data

    def to_json(self) -> str:
        """Strict JSON: a NaN or infinite metadata value is written as null."""
        return dumps(self.to_dict(), indent=2) + "\n"

    def __str__(self) -> str:
        return self.key


def canonicalise(genotype: Genotype) -> Genotype:
    """The one canonical form: a branch whose squeeze is ``none`` has excitation ``none`` too."""
    changes = {excitation: NONE for excitation, squeeze in BRANCHES.items() if getattr(genotype, squeeze) == NONE}
    return replace(genotype, **changes) if changes else genotype


def parse_block(block: Any) -> Dict[str, Any]:
    """A genotype file's ``block`` object, checked, with the missing settings at their defaults."""
    if not isinstance(block, dict):
        raise GenotypeError(f"'block' must be an object, got {_json_type(block)}")
    extra = [k for k in block if k not in BLOCK_KEYS]
    if extra:
        raise GenotypeError(f"'block' has unknown key {extra[0]!r}; expected: {', '.join(BLOCK_KEYS)}")
    combine = block.get("combine", DEFAULT_COMBINE)
    if combine not in COMBINE_RULES:
        raise GenotypeError(f"'block.combine': unknown rule {combine!r}; valid: {', '.join(COMBINE_RULES)}")
    gate_bias = block.get("gate_bias", GATE_BIAS)
    if isinstance(gate_bias, bool) or not isinstance(gate_bias, (int, float)) or not math.isfinite(gate_bias):
        raise GenotypeError(f"'block.gate_bias' must be a finite number, got {gate_bias!r}")
    return {"combine": combine, "gate_bias": float(gate_bias)}


def from_ops(ops: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> Genotype:
    """A canonical genotype from a mapping with exactly the four decision keys."""
    if not isinstance(ops, Mapping):
        raise GenotypeError(f"'ops' must be an object, got {type(ops).__name__}")
    for name in DECISION_NAMES:
        if name not in ops:
            raise GenotypeError(f"'ops' is missing key {name!r}")
    extra = [k for k in ops if k not in DECISION_NAMES]
    if extra:
        raise GenotypeError(f"'ops' has unknown key {extra[0]!r}; expected: {', '.join(DECISION_NAMES)}")
    return canonicalise(Genotype(**{name: ops[name] for name in DECISION_NAMES}, metadata=dict(metadata or {})))


def from_key(key: str) -> Genotype:
    """A canonical genotype from its key string ``cs|ce|ss|se``."""
    parts = key.split("|") if isinstance(key, str) else []
    if len(parts) != len(DECISION_NAMES):
        raise GenotypeError(f"genotype key must be {len(DECISION_NAMES)} op names joined by '|', got {key!r}")
    return from_ops(dict(zip(DECISION_NAMES, parts)))


def from_dict(data: Any) -> Genotype:
    """A canonical genotype from a parsed genotype JSON document; refuses anything docs/formats.md refuses."""
    if not isinstance(data, dict):
        raise GenotypeError(f"genotype must be a JSON object, got {_json_type(data)}")
    extra = [k for k in data if k not in _TOP_LEVEL_KEYS]
    if extra:
        raise GenotypeError(f"unknown key {extra[0]!r}; expected: {', '.join(_TOP_LEVEL_KEYS)}")
    if data.get("format") != FORMAT:
        raise GenotypeError(f"'format' must be {FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != VERSION or isinstance(data.get("version"), bool):
        raise GenotypeError(f"'version' must be {VERSION}, got {data.get('version')!r}")
    if data.get("search_space") not in SEARCH_SPACES:
        raise GenotypeError(
            f"'search_space' must be one of {', '.join(SEARCH_SPACES)}, got {data.get('search_space')!r}"
        )
    if "ops" not in data:
        raise GenotypeError("missing key 'ops'")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise GenotypeError(f"'metadata' must be an object, got {_json_type(metadata)}")
    block = parse_block(data["block"]) if "block" in data else None
    return replace(from_ops(data["ops"], metadata), block=block)


def from_json(text: str) -> Genotype:
    try:
        data = loads(text)
    except json.JSONDecodeError as err:
        raise GenotypeError(f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except ValueError as err:  # NaN or Infinity
        raise GenotypeError(str(err)) from None
    return from_dict(data)


def load(path: Union[str, Path]) -> Genotype:
    """Read a genotype JSON file; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise GenotypeError(f"{path}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise GenotypeError(f"{path}: malformed JSON: not UTF-8 text") from None
    try:
        return from_json(text)
    except GenotypeError as err:
        raise GenotypeError(f"{path}: {err}") from None


def all_genotypes() -> Iterator[Genotype]:
    """Every distinct canonical genotype of the space, each once, in registry order."""
    def branch(squeeze, excitation):
        yield ("none", "none")
        for s in squeeze.names():
            if s != "none":
                for e in excitation.names():
                    yield (s, e)

    for (cs, ce), (ss, se) in itertools.product(
        branch(CHANNEL_SQUEEZE, CHANNEL_EXCITATION), branch(SPATIAL_SQUEEZE, SPATIAL_EXCITATION)
    ):
        yield Genotype(cs, ce, ss, se)


def space_size() -> int:
    def branch(squeeze, excitation):
        return 1 + (len(squeeze.names()) - 1) * len(excitation.names())

    return branch(CHANNEL_SQUEEZE, CHANNEL_EXCITATION) * branch(SPATIAL_SQUEEZE, SPATIAL_EXCITATION)


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )
