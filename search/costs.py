"""What a genotype costs, for a search whose objective weighs latency: predicted latency and multiply-adds."""
from __future__ import annotations

from typing import Any, Dict

import torch

from evaluator.latency import predict_ms
from evaluator.models import build_model
from evaluator.standalone import count_macs


class GenotypeCosts:
    """A genotype's predicted latency (ms per image at ``batch``, from the run's latency table) and its
    multiply-adds per image (counted once per genotype on the table's network and image size)."""

    def __init__(self, table: Dict[str, Any], batch: int, combine: str) -> None:
        self.table, self.batch, self.combine = table, batch, combine
        self._macs: Dict[str, int] = {}

    def latency_ms(self, key: str) -> float:
        return predict_ms(self.table, key, self.batch, self.combine)

    def macs(self, key: str) -> int:
        if key not in self._macs:
            table = self.table
            with torch.random.fork_rng(devices=[]):  # the model's init must not move the search's RNG
                model = build_model(table["arch"], table["num_classes"], key, reduction=table["reduction"],
                                    combine=self.combine)
            image = torch.zeros(1, table["channels"], table["image_size"], table["image_size"])
            self._macs[key] = count_macs(model, image)
        return self._macs[key]
