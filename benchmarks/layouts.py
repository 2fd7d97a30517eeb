"""The same matrix products in each layout, under each BLAS kernel set this CPU offers.

    python benchmarks/layouts.py                        # this process's kernels, ~1 min
    python benchmarks/layouts.py --kernels all          # default, Haswell, SkylakeX (if the
                                                        # CPU has AVX-512), Prescott: ~10 min
    python benchmarks/layouts.py --kernels Prescott --rounds 3

``y = X @ W`` can be asked of BLAS as ``X @ W`` or as ``(W.T @ X.T).T`` (the tutorial's
feature-major layout), and the weight gradient as ``X.T @ G`` or ``(G.T @ X).T``: the same
numbers up to rounding, at speeds that depend on the CPU, the kernels OpenBLAS picks and the
dtype (issue 23). For the tutorial's and the benchmark MLP's shapes this prints the median time
of each (the variants alternated round by round in one process, so a slow stretch of a shared
machine hits them alike) and the layout ``nnscratch.nn._kernels.matmul`` chooses on first sight
of the same operands. ``../shared/bench/layouts.py`` is the same table without the choice.

``--kernels`` runs one child process per kernel set with ``OPENBLAS_CORETYPE`` set (and
``OPENBLAS_L2_SIZE`` removed, so that a value set for one CPU does not skew another's kernels);
``default`` removes both. SkylakeX is skipped where ``/proc/cpuinfo`` lacks ``avx512f``: its
kernels would stop at the first AVX-512 instruction.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from _timing import alternate

KERNEL_SETS = ("default", "Haswell", "SkylakeX", "Prescott")
#: (n_samples, in_features, out_features): the tutorial's first layer, the MLP's first layer at
#: inference on the test set, over the training set, and at batch 128 and 512.
SHAPES = ((12_700, 784, 196), (10_000, 784, 256), (60_000, 784, 256), (512, 784, 256),
          (128, 784, 256))


def blas_line() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS unknown (pip install threadpoolctl)"
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return (f"{pool.get('internal_api')} {pool.get('version')}, "
                    f"{pool.get('architecture')} kernels, {pool.get('num_threads')} threads")
    return "no BLAS found by threadpoolctl"


def time_layouts(x: np.ndarray, w: np.ndarray, g: np.ndarray, rounds: int
                 ) -> tuple[dict[str, float], dict[str, float]]:
    """Milliseconds of the forward product and of the weight gradient (copied into the
    weights' C order, as nnscratch needs it), each layout."""
    forward = alternate({"direct": lambda: x @ w, "transposed": lambda: (w.T @ x.T).T}, rounds)
    weight = alternate({"direct": lambda: x.T @ g,
                        "transposed": lambda: np.ascontiguousarray((g.T @ x).T)}, rounds)
    return ({name: 1e3 * s for name, s in forward.items()},
            {name: 1e3 * s for name, s in weight.items()})


def table(rounds: int | None, shapes: tuple[tuple[int, int, int], ...]) -> None:
    from nnscratch.nn import _kernels

    print(blas_line(), f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    print(f"{'shape (n, in, out)':20} {'dtype':8} {'X@W':>8} {'(Wt@Xt)t':>9} {'chooses':>10}"
          f" {'X.T@G':>8} {'(Gt@X)t':>8} {'chooses':>10}  ms")
    print("(the weight gradient's transposed layout includes the copy into C order)")
    rng = np.random.default_rng(0)
    for n, d, h in shapes:
        X, W, G = rng.random((n, d)), rng.standard_normal((d, h)), rng.standard_normal((n, h))
        for dtype in (np.float64, np.float32):
            x, w, g = X.astype(dtype), W.astype(dtype), G.astype(dtype)
            k = rounds or (5 if n * d * h > 5e8 else 9 if n > 1000 else 101)
            forward, weight = time_layouts(x, w, g, k)
            _kernels.clear_matmul_layouts()
            _kernels.matmul(x, w)
            _kernels.matmul(x.T, g, order="C")
            chosen = [c["layout"] for c in _kernels.matmul_layouts()]
            print(f"{(n, d, h)!s:20} {np.dtype(dtype).name:8} {forward['direct']:8.2f} "
                  f"{forward['transposed']:9.2f} {chosen[0]:>10} {weight['direct']:8.2f} "
                  f"{weight['transposed']:8.2f} {chosen[1]:>10}", flush=True)


def has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/layouts.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", default=None,
                        help="comma-separated kernel sets to run in child processes "
                             f"({', '.join(KERNEL_SETS)}) or 'all'; default: this process only")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternations per comparison (default: 5 to 101 by size)")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes and 2 rounds: proves the code paths")
    args = parser.parse_args(argv)
    shapes = ((300, 784, 196), (128, 784, 256)) if args.quick else SHAPES
    rounds = 2 if args.quick else args.rounds
    if args.kernels is None:
        table(rounds, shapes)
        return 0
    names = KERNEL_SETS if args.kernels == "all" else tuple(
        name.strip() for name in args.kernels.split(",") if name.strip())
    for name in names:
        if name == "SkylakeX" and not has_avx512():
            print(f"\n{name}: skipped, this CPU has no AVX-512 (no avx512f in /proc/cpuinfo)")
            continue
        env = {key: value for key, value in os.environ.items()
               if key not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        if name != "default":
            env["OPENBLAS_CORETYPE"] = name
        print(f"\n{name}:", flush=True)
        command = [sys.executable, __file__] + (["--quick"] if args.quick else [])
        if args.rounds:
            command += ["--rounds", str(args.rounds)]
        subprocess.run(command, env=env, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
