"""Strict JSON, the only kind the project writes or accepts: no NaN or Infinity (null instead, or refused)."""
from __future__ import annotations

import json
import math
from typing import Any, NoReturn

import numpy as np


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in nested dicts, lists and tuples) replaced by None;
    numpy scalars and arrays become Python numbers and lists first."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` of ``value`` with NaN and infinities written as null; never a bare NaN."""
    return json.dumps(finite_or_null(value), allow_nan=False, **options)


def _refuse(constant: str) -> NoReturn:
    raise ValueError(f"not strict JSON: {constant} is not a JSON value (write null)")


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN, Infinity and -Infinity (ValueError; JSONDecodeError for malformed text)."""
    return json.loads(text, parse_constant=_refuse)
