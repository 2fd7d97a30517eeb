"""Run measurements in a fresh process: ``python benchmarks/_worker.py JOB.json``.

The job (written by ``compare.py``) lists measurements of one contender — each a task, the
data files and settings — and where to write the results. The worker imports the contender's
library, limits its threads, and for each measurement loads the data, resets the peak-memory
mark, runs the task and keeps the figures; then it writes them all as JSON.

A full run gives every measurement its own process, so that a contender's caches, allocator
state and memory peak stay out of the next measurement; ``--quick`` runs all of a contender's
tasks in one process, to save the start-up (importing PyTorch alone takes seconds).

Peak memory: on Linux the kernel's high-water mark of the resident set (``VmHWM``) is reset
through ``/proc/self/clear_refs`` once the libraries and the data are loaded, and the figure is
the mark at the end minus the resident set at the reset — the memory the work itself added at
its peak (model, activations, gradients, optimiser state, the library's own copies of the data).
Where that reset is not possible the worker falls back to ``ru_maxrss`` and says so.

What is left out: sharing anything between measurements.
"""

from __future__ import annotations

import json
import resource
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from _contenders import Data, make_contender, work_figures

MIB = 1024 * 1024


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class PeakMemory:
    """Measure the peak resident memory added after :meth:`reset`."""

    def reset(self) -> None:
        self.method = "ru_maxrss (peak of the whole process) minus the resident set at the start"
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # reset VmHWM to the current resident set size
            self.method = "VmHWM reset via /proc/self/clear_refs, minus VmRSS at the reset"
            self._hwm = True
        except OSError:
            self._hwm = False
        rss = _status_kib("VmRSS")
        self.baseline = rss * 1024 if rss is not None else _maxrss_bytes()

    def figures(self) -> dict[str, Any]:
        hwm = _status_kib("VmHWM") if self._hwm else None
        peak = hwm * 1024 if hwm is not None else _maxrss_bytes()
        return {"peak_mib": max(peak - self.baseline, 0) / MIB, "peak_rss_mib": peak / MIB,
                "baseline_rss_mib": self.baseline / MIB, "memory_method": self.method}


def load_data(files: dict[str, Any], dtype: str) -> Data:
    """The task's arrays, copied out of the cache files so they are resident before the reset."""
    def part(name: str, rows: int | None) -> np.ndarray:
        array = np.load(files[name], mmap_mode="r")
        return np.array(array[:rows])

    X_train = part("X_train", files["n_train"]).astype(dtype, copy=False)
    X_test = part("X_test", files["n_test"]).astype(dtype, copy=False)
    return Data(X_train, part("y_train", files["n_train"]), X_test,
                part("y_test", files["n_test"]))


def _limit_threads(threads: int) -> tuple[Any, list[dict[str, Any]]]:
    """Limit the BLAS and OpenMP pools loaded so far (the contender's library included)."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return None, [{"note": "threadpoolctl is not installed; threads set by environment only"}]
    limiter = threadpool_limits(limits=threads)
    return limiter, threadpool_info()


def measure(contender: Any, spec: dict[str, Any], data: Data) -> dict[str, Any]:
    """One measurement: reset the peak-memory mark, run the task, add the common figures."""
    task = spec["task"]
    memory = PeakMemory()
    memory.reset()
    result = contender.run(task, data)
    result.update(memory.figures())
    if task["kind"] != "tta":
        result.update(work_figures(task, data))
    result["status"] = "ok"
    return result


def run_specs(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the measurements of one process, all for the same contender, in order.

    The contender's library is imported and the threads limited once; each measurement loads
    its own data. A failing measurement is recorded and the next one still runs.
    """
    first = specs[0]
    contender = make_contender(first["contender"], first["threads"],
                               first["ceiling_block_seconds"])
    _limiter, pools = _limit_threads(first["threads"])
    info = {**contender.library_info(), "threadpools": pools}
    results = []
    for spec in specs:
        try:
            data = load_data(spec["data"], spec["task"]["dtype"])
            result = measure(contender, spec, data)
            result["library_info"] = info
            del data
        except Exception:
            result = {"status": "error", "error": traceback.format_exc()}
        results.append(result)
    return results


def main(argv: list[str]) -> int:
    """``argv[1]`` is a JSON file with the list of measurements and where to write results."""
    job = json.loads(Path(argv[1]).read_text())
    try:
        results = run_specs(job["specs"])
    except Exception:  # the library failed to import or to start
        results = [{"status": "error", "error": traceback.format_exc()} for _ in job["specs"]]
    Path(job["result_path"]).write_text(json.dumps(results))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
