"""The SASE search space: four operation sets, the attention block, genotypes and known modules."""
from searchspace import channel_excitation, channel_squeeze, spatial_excitation, spatial_squeeze  # noqa: F401  (register ops)
from searchspace.block import COMBINE_RULES, GATE_BIAS, SASEBlock, attend, initial_logit
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
    resolve,
    space_size,
)
from searchspace.known import KNOWN
from searchspace.registry import (
    CHANNEL_EXCITATION,
    CHANNEL_SQUEEZE,
    DECISION_NAMES,
    DECISIONS,
    SPATIAL_EXCITATION,
    SPATIAL_SQUEEZE,
    OpRegistry,
)

__all__ = [
    "CHANNEL_EXCITATION", "CHANNEL_SQUEEZE", "COMBINE_RULES", "DECISIONS", "DECISION_NAMES", "GATE_BIAS",
    "Genotype", "GenotypeError", "KNOWN", "OpRegistry", "SASEBlock", "SEARCH_SPACE", "SPATIAL_EXCITATION",
    "SPATIAL_SQUEEZE", "all_genotypes", "attend", "canonicalise", "from_dict", "from_json", "from_key",
    "from_ops", "load", "resolve", "space_size",
]
