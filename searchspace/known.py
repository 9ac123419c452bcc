"""Published attention modules as genotypes of the SASE space, with the combination rule each uses.

Build one with ``SASEBlock(C, KNOWN[name], combine=KNOWN_COMBINE.get(name, "sequential"))``.
"""
from __future__ import annotations

from typing import Dict

from searchspace import channel_excitation, channel_squeeze, spatial_excitation, spatial_squeeze  # noqa: F401  (register ops)
from searchspace.genotype import Genotype, from_key

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
