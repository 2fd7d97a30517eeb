"""Compare nnscratch with PyTorch (CPU) and scikit-learn's ``MLPClassifier`` on the same work.

    python benchmarks/compare.py [--quick] [--out DIR] [--tasks LIST] [--repeats N] ...

Tasks: the tutorial's recipe in float64 and float32; one epoch of all ten digits
(784-256-128-10 ReLU, Adam) at batch 128 and 512; time to reach 99.5% test accuracy on 1 vs 2
and 98.0% on ten digits, each contender with its own recipe; inference throughput at batch 1
and 10,000; one epoch of a small CNN (``cnn-epoch``: Conv2D(1,32,3,padding=1)-ReLU-MaxPool2D(2)-
Conv2D(32,64,3,padding=1)-ReLU-MaxPool2D(2)-Flatten-Dense(3136,128)-ReLU-Dense(128,10), batch
128, Adam 1e-3; against PyTorch only, scikit-learn has no CNN). Alongside the contenders, the
NumPy GEMM ceiling times each task's matrix products alone, in the same run (for the CNN, the
im2col products of its convolutions and its dense layers), and every measurement records the
peak memory of its work.

Method: every measurement runs in a fresh worker process (``_worker.py``) with the same thread
count for every library; for each task the contenders are alternated, in an order rotated at
each repeat, and the median of the repeats is reported (5 repeats for the tasks of about a
second, 3 for the long ones, unless ``--repeats`` says otherwise). One table goes to stdout, and
``results.json``, ``results.md`` and the time-to-accuracy plots to ``--out``.

``--quick`` runs every task and contender at tiny sizes, to prove that the code works (CI runs
it); its figures say nothing about speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _report import (
    HEADER,
    LABELS,
    evaluate_targets,
    load_average,
    machine_info,
    markdown_table,
    package_version,
    plot_curves,
    render_markdown,
    summarise,
    table_rows,
    targets_table,
)
from _tasks import CEILING, CONTENDERS, NO_CNN, TASK_GROUPS, TUTORIAL_CODE, Task, build_tasks

from nnscratch.data import load_digits

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_worker.py"
DIGITS = {"binary": (1, 2), "ten": "all"}
#: Measurements per task and contender by task kind, when ``--repeats`` is not given. A task of
#: about a second can land in one of the shared machine's slow stretches (two-thread matrix
#: products there run up to 1.7 times slower for several seconds; see docs/performance.md), so
#: the short kinds get five repeats and the median is less often a slow one.
DEFAULT_REPEATS = {"epoch": 5, "inference": 5, "tutorial": 3, "tta": 3, "cnn": 3}
#: The import name and the install hint of each optional contender.
LIBRARIES = {"pytorch": ("torch", "pip install torch==2.13.0"),
             "sklearn": ("sklearn", "pip install scikit-learn")}
EXPECTED_TORCH = "2.13.0"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/compare.py",
        description="Time nnscratch, PyTorch and scikit-learn on the same MNIST work.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one repeat: proves every code path works (for CI)")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="folder for results.json, results.md and the plots "
                             "(default: benchmarks/results)")
    parser.add_argument("--tasks", default="all",
                        help="comma-separated task keys or groups (tutorial, epoch, tta, "
                             "inference, cnn); default: all")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)} "
                             "(the NumPy GEMM ceiling always runs, and the tutorial's own "
                             "code on the tutorial tasks)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="measurements per task and contender, median reported "
                             "(default: 5 for epoch and inference tasks, 3 for tutorial and "
                             "time-to-accuracy tasks, 1 with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every contender (default: the usable CPUs, or 1 with "
                             "--quick)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the MNIST files (default: NNSCRATCH_DATA, the cache, "
                             "or a download; see nnscratch.data.load_mnist)")
    parser.add_argument("--recipes", type=Path, default=None,
                        help='JSON file overriding time-to-accuracy recipes, e.g. '
                             '{"tta-ten": {"sklearn": {"hidden": [256, 128]}}}')
    parser.add_argument("--process-per", choices=("measurement", "contender"), default=None,
                        help="start a fresh worker process for every measurement (default), or "
                             "one per contender and repeat (default with --quick)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed for one measurement (default: no limit)")
    args = parser.parse_args(argv)
    if args.process_per is None:
        args.process_per = "contender" if args.quick else "measurement"
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}.")
    if args.threads is None and args.quick:
        # On a busy CI machine, two-thread BLAS/OpenMP pools wait on each other and a run of a
        # few seconds takes minutes; one thread proves the code just as well.
        args.threads = 1
    if args.threads is None:
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        args.threads = len(usable) if usable else (os.cpu_count() or 1)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}.")
    return args


def select_tasks(spec: str, tasks: list[Task]) -> list[Task]:
    """The tasks named by ``--tasks``, in the canonical order."""
    if spec.strip() == "all":
        return tasks
    known = {task.key for task in tasks}
    wanted: set[str] = set()
    for name in (part.strip() for part in spec.split(",") if part.strip()):
        if name in TASK_GROUPS:
            wanted.update(TASK_GROUPS[name])
        elif name in known:
            wanted.add(name)
        else:
            raise SystemExit(f"--tasks: unknown task {name!r}; choose from "
                             f"{sorted(known | set(TASK_GROUPS))} or 'all'.")
    return [task for task in tasks if task.key in wanted]


def select_contenders(spec: str, notes: list[str]) -> tuple[list[str], dict[str, str]]:
    """The contenders to run, and the skipped ones with the reason (library not installed)."""
    names = [part.strip() for part in spec.split(",") if part.strip()]
    unknown = [name for name in names if name not in CONTENDERS]
    if unknown:
        raise SystemExit(f"--contenders: unknown {unknown}; choose from {list(CONTENDERS)}.")
    skipped = {}
    for name in names:
        if name in LIBRARIES:
            module, hint = LIBRARIES[name]
            if importlib.util.find_spec(module) is None:
                skipped[name] = f"{LABELS[name]} is not installed ({hint}); its rows are skipped"
                notes.append(skipped[name])
    torch_version = package_version("torch")
    if "pytorch" in names and torch_version and torch_version.split("+")[0] != EXPECTED_TORCH:
        notes.append(f"PyTorch {torch_version} is installed; the issue asks for "
                     f"torch=={EXPECTED_TORCH}")
    return [name for name in names if name not in skipped], skipped


def prepare_data(tasks: list[Task], data_dir: Path | None, folder: Path) -> dict[str, Any]:
    """Load each (digits, dtype) once with nnscratch's loader and save it as ``.npy`` files that
    every worker reads the same way; only as many rows as the tasks need are kept."""
    rows: dict[tuple[str, str], list[int | None]] = {}
    for task in tasks:
        n_train = task.params.get("n_train")
        n_test = task.params.get("n_test")
        have = rows.setdefault((task.dataset, task.dtype), [0, 0])
        have[0] = None if n_train is None or have[0] is None else max(have[0], n_train)
        have[1] = None if n_test is None or have[1] is None else max(have[1], n_test)
    files: dict[str, Any] = {}
    for (dataset, dtype), (n_train, n_test) in rows.items():
        data = load_digits(DIGITS[dataset], data_dir=data_dir, dtype=np.dtype(dtype),
                           progress=False)
        paths = {}
        for name, array, count in (("X_train", data.X_train, n_train),
                                   ("y_train", data.y_train, n_train),
                                   ("X_test", data.X_test, n_test),
                                   ("y_test", data.y_test, n_test)):
            paths[name] = str(folder / f"{dataset}-{dtype}-{name}.npy")
            np.save(paths[name], np.ascontiguousarray(array[:count]))
        files[f"{dataset}-{dtype}"] = paths
    return files


def run_worker(specs: list[dict[str, Any]], folder: Path, timeout: float | None,
               name: str) -> list[dict[str, Any]]:
    """Run measurements (all of one contender) in a fresh process; return their results."""
    job_path, result_path = folder / f"{name}.job.json", folder / f"{name}.result.json"
    job_path.write_text(json.dumps({"specs": specs, "result_path": str(result_path)}))
    threads = str(specs[0]["threads"])
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads}
    try:
        process = subprocess.run([sys.executable, str(WORKER), str(job_path)], env=env,
                                 capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return [{"status": "error", "error": f"timed out after {timeout} s"} for _ in specs]
    if result_path.exists():
        return json.loads(result_path.read_text())
    error = (f"the worker exited with {process.returncode} and wrote no result:\n"
             f"{process.stderr[-3000:]}")
    return [{"status": "error", "error": error} for _ in specs]


def repeats_per_task(tasks: list[Task], repeats: int | None, quick: bool) -> dict[str, int]:
    """How many times each task is measured per contender: ``repeats`` if given, else 1 in quick
    mode, else :data:`DEFAULT_REPEATS` for the task's kind."""
    if repeats is None:
        return {task.key: 1 if quick else DEFAULT_REPEATS[task.kind] for task in tasks}
    return {task.key: repeats for task in tasks}


def plan_jobs(tasks: list[Task], contenders: list[str], repeats: dict[str, int],
              per_contender: bool) -> list[list[tuple[Task, str, int]]]:
    """The worker processes to start, in order, each a list of (task, contender, repeat).

    By default each measurement gets its own process; per task, ``repeats[task.key]`` rounds go
    over the contenders in an order rotated every round, so none always runs first or after the
    same neighbour. With ``per_contender`` (``--quick``) each round starts one process per
    contender that runs all its tasks still to repeat, the contender order rotated in the same
    way.
    """
    def runners(task: Task) -> list[str]:
        mine = [name for name in contenders if not (task.kind == "cnn" and name in NO_CNN)]
        return (mine + ([] if task.kind == "tta" else [CEILING])
                + ([TUTORIAL_CODE] if task.kind == "tutorial" else []))

    def rotated(names: list[str], rep: int) -> list[str]:
        shift = rep % len(names)
        return names[shift:] + names[:shift]

    if per_contender:
        rounds = max(repeats.values(), default=0)
        return [[(task, name, rep) for task in tasks
                 if name in runners(task) and rep < repeats[task.key]]
                for rep in range(rounds)
                for name in rotated([*contenders, CEILING, TUTORIAL_CODE], rep)]
    return [[(task, name, rep)] for task in tasks for rep in range(repeats[task.key])
            for name in rotated(runners(task), rep)]


def run_all(tasks: list[Task], contenders: list[str], repeats: dict[str, int],
            args: argparse.Namespace, files: dict[str, Any], folder: Path
            ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Run every job and gather the results by task and contender."""
    block_seconds = 0.02 if args.quick else 1.0
    jobs = [job for job in plan_jobs(tasks, contenders, repeats,
                                     args.process_per == "contender") if job]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {task.key: {} for task in tasks}
    count, total = 0, sum(len(job) for job in jobs)
    for number, job in enumerate(jobs):
        specs = [{"task": task.as_dict(), "contender": name, "rep": rep,
                  "threads": args.threads, "ceiling_block_seconds": block_seconds,
                  "data": {**files[f"{task.dataset}-{task.dtype}"],
                           "n_train": task.params.get("n_train"),
                           "n_test": task.params.get("n_test")}}
                 for task, name, rep in job]
        start = time.perf_counter()
        results = run_worker(specs, folder, args.timeout, f"job{number}")
        elapsed = time.perf_counter() - start
        for (task, name, rep), result in zip(job, results, strict=True):
            count += 1
            raw[task.key].setdefault(name, []).append(result)
            if result["status"] == "ok":
                figure = result["seconds"]
                shown = "target not reached" if figure is None else f"{figure:.3g} s"
            else:
                lines = result.get("error", "").strip().splitlines() or [""]
                shown = f"{result['status'].upper()}: {lines[-1]}"
            if len(job) == 1:
                shown += f"  (process {elapsed:.1f} s)"
            print(f"[{count}/{total}] {task.key:<17} {LABELS[name]:<19} rep {rep + 1}: {shown}",
                  flush=True)
        if len(job) > 1:
            print(f"    worker process {number + 1}/{len(jobs)} ({LABELS[job[0][1]]}): "
                  f"{elapsed:.1f} s", flush=True)
    return raw


def _library_info(raw: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """What each contender's worker reported about its library (versions, BLAS, threads)."""
    info: dict[str, Any] = {}
    for by_contender in raw.values():
        for name, reps in by_contender.items():
            for rep in reps:
                if rep.get("status") == "ok" and name not in info:
                    info[name] = rep.get("library_info")
    return info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    notes: list[str] = []
    overrides = json.loads(args.recipes.read_text()) if args.recipes else None
    tasks = select_tasks(args.tasks, build_tasks(args.quick, overrides))
    contenders, skipped = select_contenders(args.contenders, notes)
    for note in notes:
        print(f"note: {note}", flush=True)
    machine = machine_info(args.threads)
    repeats = repeats_per_task(tasks, args.repeats, args.quick)
    command = "python benchmarks/compare.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    report: dict[str, Any] = {
        "schema": 1,
        "mode": "quick" if args.quick else "full",
        "command": command.strip(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {"repeats": repeats, "threads": args.threads,
                     "process_per": args.process_per, "contenders": contenders, "skipped": skipped,
                     "tasks": [task.key for task in tasks],
                     "data_dir": str(args.data_dir) if args.data_dir else None},
    }
    with tempfile.TemporaryDirectory(prefix="nnscratch-bench-") as temporary:
        folder = Path(temporary)
        files = prepare_data(tasks, args.data_dir, folder)
        raw = run_all(tasks, contenders, repeats, args, files, folder)
    for task in tasks:
        for name, reason in skipped.items():
            raw[task.key][name] = [{"status": "skipped", "note": reason}]
        for name, reason in NO_CNN.items():
            if task.kind == "cnn" and name in contenders:
                raw[task.key][name] = [{"status": "skipped", "note": reason}]
                if reason not in notes:
                    notes.append(reason)
    machine["load_average_end"] = load_average()
    machine["libraries"] = _library_info(raw)
    entries = summarise(tasks, raw)
    args.out.mkdir(parents=True, exist_ok=True)
    report.update({"machine": machine, "tasks": entries, "targets": evaluate_targets(entries)})
    if args.process_per == "contender":
        notes.append("one worker process per contender ran all its tasks, so a task's peak "
                     "memory can hide in memory freed by the task before it (approximate)")
    if args.quick:
        notes.append("quick mode: tiny sizes; the figures and the targets say nothing about speed")
    report["plots"] = plot_curves(entries, args.out)
    report["notes"] = notes
    report["wall_seconds"] = time.perf_counter() - started
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "results.md").write_text(render_markdown(report))

    print()
    print(markdown_table(HEADER, table_rows(entries)))
    print()
    print(targets_table(report["targets"]))
    for note in notes:
        print(f"note: {note}")
    print(f"\nwrote {args.out / 'results.json'}, {args.out / 'results.md'}"
          + "".join(f", {path}" for path in report["plots"]))
    errors = [(entry["key"], name) for entry in entries
              for name, result in entry["results"].items() if result["status"] == "error"]
    if errors:
        print(f"errors in {errors}; see results.json", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
