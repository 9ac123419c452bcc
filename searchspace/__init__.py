"""The SASE search space: four operation sets, the attention block, genotypes and known modules."""
from searchspace.block import SASEBlock, attend, initial_logit
from searchspace.genotype import (
    SEARCH_SPACE,
    Genotype,
    GenotypeError,
    all_genotypes,
    canonicalise,
    from_dict,
    from_json,
    from_key,
    from_ops,
    load,
    space_size,
)
from searchspace.known import KNOWN, resolve
from searchspace.ops import CHANNEL_EXCITATION, CHANNEL_SQUEEZE, DECISION_NAMES, DECISIONS, SPATIAL_EXCITATION, SPATIAL_SQUEEZE
from searchspace.registry import OpRegistry
from searchspace.rules import BRANCHES, COMBINE_RULES, GATE_BIAS, NONE, hidden_channels

__all__ = [
    "BRANCHES", "CHANNEL_EXCITATION", "CHANNEL_SQUEEZE", "COMBINE_RULES", "DECISIONS", "DECISION_NAMES", "GATE_BIAS",
    "Genotype", "GenotypeError", "KNOWN", "NONE", "OpRegistry", "SASEBlock", "SEARCH_SPACE", "SPATIAL_EXCITATION",
    "SPATIAL_SQUEEZE", "all_genotypes", "attend", "canonicalise", "from_dict", "from_json", "from_key",
    "from_ops", "hidden_channels", "load", "resolve", "space_size",
]
