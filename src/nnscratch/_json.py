"""Strict JSON out: what nnscratch prints or writes for programs is always valid JSON.

Python's ``json`` writes NaN and infinity as the bare words ``NaN`` and ``Infinity``, which
are not JSON: a strict reader (``jq``, JavaScript's ``JSON.parse``, Go, Rust) rejects the whole
document. :func:`to_json` refuses them instead (``allow_nan=False``) with a message that names
where the value sits (``[0].probabilities.7``), and writes NumPy scalars and arrays as the
plain numbers and lists they hold. Every ``--json`` output, ``metrics.json`` and a model file's
metadata go through it.

What it leaves out: reading JSON (each reader checks what it needs).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["NonFiniteJSONError", "find_non_finite", "to_json"]


class NonFiniteJSONError(ValueError):
    """A document to be written as JSON holds NaN or infinity, which JSON cannot represent."""


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as the Python numbers and lists JSON knows."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} {value!r:.60} cannot be written as JSON")


def find_non_finite(document: Any, where: str = "") -> tuple[str, float] | None:
    """The place (``key.sub[3]``) and value of the first NaN or infinity in ``document``."""
    if isinstance(document, np.ndarray | np.generic):
        document = document.tolist()
    if isinstance(document, float):
        return None if math.isfinite(document) else (where or "the value", document)
    if isinstance(document, dict):
        items = ((f"{where}.{key}" if where else str(key), value)
                 for key, value in document.items())
    elif isinstance(document, list | tuple):
        items = ((f"{where}[{index}]", value) for index, value in enumerate(document))
    else:
        return None
    for place, value in items:
        found = find_non_finite(value, place)
        if found is not None:
            return found
    return None


_FIX = ("A NaN or infinite result means the computation broke down (for a model: weights or "
        "inputs out of range); check the model with 'nnscratch info' or retrain it.")


def to_json(document: Any, *, what: str = "the JSON output", fix: str = _FIX,
            indent: int | None = 2, sort_keys: bool = False) -> str:
    """Encode ``document`` as strict JSON.

    Parameters
    ----------
    document : JSON-like
        Dicts, lists, tuples, strings, numbers, booleans, None; NumPy scalars and arrays too.
    what : str, default="the JSON output"
        What is being written, for the message (``"metrics.json"``, ``"the metadata"``).
    fix : str, optional
        What to do about a non-finite value, appended to the message.
    indent : int or None, default=2
    sort_keys : bool, default=False

    Returns
    -------
    str

    Raises
    ------
    NonFiniteJSONError
        If a number is NaN or infinite; the message names its place and says that nothing
        was written.
    TypeError
        If a value is of a type JSON cannot hold.
    """
    try:
        return json.dumps(document, indent=indent, sort_keys=sort_keys, allow_nan=False,
                          default=_plain)
    except ValueError:
        try:
            found = find_non_finite(document)
        except RecursionError:  # a circular reference, which json reports itself
            found = None
        if found is None:
            raise
        place, value = found
        raise NonFiniteJSONError(
            f"{what}: {place} is {value}, which JSON cannot represent, so nothing was written. "
            f"{fix}"
        ) from None
