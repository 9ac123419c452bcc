"""Published attention modules as genotypes of the SASE space, and ``resolve``, which accepts their names.

Build one with ``SASEBlock(C, KNOWN[name], combine=KNOWN_COMBINE.get(name, "sequential"))``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Union

from searchspace.genotype import Genotype, GenotypeError, canonicalise, from_dict, from_key, from_ops, load

KNOWN_PAPERS: Dict[str, str] = {
    "none": "no attention: the plain network",
    "se": "SE, Hu et al., Squeeze-and-Excitation Networks, CVPR 2018",
    "eca": "ECA, Wang et al., ECA-Net: Efficient Channel Attention for Deep CNNs, CVPR 2020",
    "cbam": "CBAM, Woo et al., CBAM: Convolutional Block Attention Module, ECCV 2018",
    "srm": "SRM, Lee et al., SRM: A Style-based Recalibration Module for CNNs, ICCV 2019",
    "bam": "BAM, Park et al., BAM: Bottleneck Attention Module, BMVC 2018 (parallel branches)",
    "ge": "GE-theta-minus with global extent, Hu et al., Gather-Excite, NeurIPS 2018",
    "gc": "GCNet's context block under sigmoid gating, Cao et al., GCNet, ICCV Workshops 2019",
    "fca": "FcaNet, Qin et al., FcaNet: Frequency Channel Attention Networks, ICCV 2021",
}

KNOWN: Dict[str, Genotype] = {
    name: from_key(key)
    for name, key in (
        ("none", "none|none|none|none"),
        ("se", "gap|fc_relu_fc|none|none"),
        ("eca", "gap|eca|none|none"),
        ("cbam", "avg_max|fc_relu_fc|mean_max|conv7x7"),
        ("srm", "style|bn|none|none"),
        ("bam", "gap|fc_bn_relu_fc|conv1x1|dilated"),
        ("ge", "gap|none|none|none"),
        ("gc", "context|fc_ln_relu_fc|none|none"),
        ("fca", "dct|fc_relu_fc|none|none"),
    )
}

# The rule each module was published with, where it is not the default "sequential".
KNOWN_COMBINE: Dict[str, str] = {"bam": "parallel"}


def resolve(spec: Union[None, str, Path, Genotype, Mapping[str, Any]]) -> Genotype:
    """A canonical genotype from None, a name in KNOWN, a key string, a JSON path, a dict or a Genotype."""
    if spec is None:
        return KNOWN["none"]
    if isinstance(spec, Genotype):
        return canonicalise(spec)
    if isinstance(spec, Mapping):
        return from_dict(dict(spec)) if "format" in spec else from_ops(spec)
    text = str(spec)
    if text in KNOWN:
        return KNOWN[text]
    if "|" in text:
        return from_key(text)
    if text.endswith(".json") or Path(text).is_file():
        return load(text)
    raise GenotypeError(f"unknown attention {text!r}; expected one of {', '.join(KNOWN)}, a key string or a .json file")
