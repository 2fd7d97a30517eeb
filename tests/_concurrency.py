"""Run one function from several threads at once, as a web server's request threads do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def call_concurrently(function: Callable[[Any], Any], inputs: Sequence[Any], *,
                      threads: int = 8, repeats: int = 20) -> list[list[Any]]:
    """Call ``function`` on every input from ``threads`` threads started together.

    Thread ``t`` calls it ``repeats`` times on each input, starting from input ``t``, so that
    different inputs are in flight at the same moment. Returns, per thread, every result in call
    order. Exceptions in a thread are re-raised here.
    """
    barrier = threading.Barrier(threads)
    results: list[list[Any]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            barrier.wait()
            for step in range(repeats * len(inputs)):
                index = (thread + step) % len(inputs)
                results[thread].append((index, function(inputs[index])))
        except BaseException as error:  # handed to the main thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return results
