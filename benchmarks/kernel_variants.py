"""The tutorial's published figures under other BLAS kernels and thread counts.

README states the tutorial's figures as exact: the 1000 costs equal the reference to a relative
error it names, and the counts (12,557 / 12,700 train, 2,151 / 2,167 test) are the reference's
in float64 and again in float32. Those claims rest on floating-point sums whose order depends
on the BLAS kernel set (blocking, FMA) and on the number of threads. This script reruns the
recipe in a fresh process per variant and prints, for each, the largest relative difference of
the costs from the reference and the correct counts, so the claims can be checked on any
machine:

    python benchmarks/kernel_variants.py                       # this machine's kernels, ~6 min
    python benchmarks/kernel_variants.py --variants prescott   # one variant

Variants: ``default`` (what OpenBLAS picks here), ``one-thread`` (``OPENBLAS_NUM_THREADS=1``),
``prescott`` (``OPENBLAS_CORETYPE=Prescott``: OpenBLAS's SSE3 kernels, another summation order;
works with the dynamic-architecture OpenBLAS that NumPy's wheels ship). The MNIST files are
found as everywhere in nnscratch (``--data-dir``, ``NNSCRATCH_DATA``, the cache, a download).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "tutorial_recipe.json"
SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / \
    "tutorial_recipe.json"

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "one-thread": {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    "prescott": {"OPENBLAS_CORETYPE": "Prescott"},
}


def measure(data_dir: str | None, reference_path: Path) -> dict[str, object]:
    """Train the tutorial's recipe in float64 and float32 here; compare with the reference."""
    import numpy as np

    from nnscratch.classic import NeuralNet
    from nnscratch.data import load_digits

    reference = json.loads(reference_path.read_text())
    result: dict[str, object] = {"blas": _blas_description()}
    for dtype in ("float64", "float32"):
        data = load_digits((1, 2), data_dir=data_dir, dtype=np.dtype(dtype), progress=False)
        net = NeuralNet([196, 1], dtype=np.dtype(dtype)).fit(
            data.X_train, data.y_train, learning_rate=0.1, n_iterations=1000, log_every=1)
        costs = np.asarray(net.costs_)
        expected = np.asarray(reference["cost"])
        result[dtype] = {
            "max_relative_cost_error": float(np.max(np.abs(costs - expected) / expected)),
            "train_correct": int(np.count_nonzero(net.predict(data.X_train) == data.y_train)),
            "test_correct": int(np.count_nonzero(net.predict(data.X_test) == data.y_test)),
        }
    return result


def _blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to see the BLAS kernel)"
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return (f"{pool.get('internal_api')} {pool.get('version')} "
                    f"{pool.get('architecture')}, {pool.get('num_threads')} threads")
    return "no BLAS found by threadpoolctl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS),
                        default=list(VARIANTS))
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    reference = REFERENCE if REFERENCE.is_file() else SHARED_REFERENCE
    if args.worker:
        print(json.dumps(measure(args.data_dir, reference)))
        return 0
    reference_counts = json.loads(reference.read_text())
    print(f"reference: train {reference_counts['train_correct']}, "
          f"test {reference_counts['test_correct']}")
    print(f"{'variant':<11} {'dtype':<8} {'max rel. cost error':>20} {'train':>6} "
          f"{'test':>5}  BLAS")
    for name in args.variants:
        command = [sys.executable, __file__, "--worker"]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        completed = subprocess.run(command, capture_output=True, text=True, check=True,
                                   env={**os.environ, **VARIANTS[name]})
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        for dtype in ("float64", "float32"):
            figures = result[dtype]
            print(f"{name:<11} {dtype:<8} {figures['max_relative_cost_error']:>20.2e} "
                  f"{figures['train_correct']:>6} {figures['test_correct']:>5}  {result['blas']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
