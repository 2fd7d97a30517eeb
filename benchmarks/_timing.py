"""Timing shared by the in-process benchmark scripts (``layouts.py``, ``tricks.py``,
``tutorial_split.py``): variants alternated in one process, so a drift in the machine's speed
lands on all of them alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def alternate(variants: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each variant: one untimed warm-up call each, then ``rounds``
    rounds calling every variant once, the order rotated each round."""
    names = list(variants)
    for name in names:  # warm up
        variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            start = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
