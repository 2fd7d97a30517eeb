"""What pruning and a second worker buy ``nnscratch tune``: best validation accuracy against time.

    python benchmarks/tune_pruning.py [--trials 24] [--data-dir DIR] [--out DIR] [--quick]

Runs one fixed search three times, each a fresh study in its own SQLite file, as a user would
run it (``python -m nnscratch tune``, one process per setup, run one after the other):

- ``1 worker, no pruning`` (``--jobs 1 --pruner none``),
- ``1 worker, median pruning`` (``--jobs 1 --pruner median``),
- ``2 workers, median pruning`` (``--jobs 2 --pruner median``: each worker's BLAS pinned to
  one of the two cores, where one worker has both).

The search is ``mnist10``'s default space on all ten digits, ``--trials`` trials with the TPE
sampler seeded alike. From each study's database it reads when every trial ended and what it
scored, and reports the best validation accuracy reached against wall time (from the first
trial's start), the trial counts, the time to come within 0.1 point of the best accuracy any
setup reached, and the parallel efficiency of the two workers:
``time(1 worker, pruning) / (2 x time(2 workers, pruning))``. It writes ``results.json``,
``results.md`` (the table for ``docs/performance.md``) and ``best_vs_time.png`` to ``--out``.

Run it on an otherwise idle machine: ``24`` trials of ``mnist10`` take about an hour per setup
here without pruning. ``--quick`` runs every path with 2 trials of a two-epoch, 16-unit network:
it proves the script works, and its figures say nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

SETUPS = [
    ("1 worker, no pruning", ["--jobs", "1", "--pruner", "none"]),
    ("1 worker, median pruning", ["--jobs", "1", "--pruner", "median"]),
    ("2 workers, median pruning", ["--jobs", "2", "--pruner", "median"]),
]
QUICK_SPACE = """\
[space]
learning_rate = { low = 1e-3, high = 3e-2, log = true }
layers = [16]
epochs = 2
"""
#: How close to the best accuracy counts as having reached it (0.1 percentage point).
WITHIN = 0.001


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24, help="trials per setup (default: 24)")
    parser.add_argument("--out", default="benchmarks/results/tune",
                        help="results folder (default: benchmarks/results/tune, git-ignored)")
    parser.add_argument("--data-dir", help="folder with the MNIST files (else as nnscratch "
                                           "finds them)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the SHA-256 check of the data (a deliberately different set)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (default: 0)")
    parser.add_argument("--epochs", type=int,
                        help="train each trial this many epochs instead of mnist10's 12 (the "
                             "rest of the default space unchanged): a shorter measurement")
    parser.add_argument("--quick", action="store_true",
                        help="2 trials of a tiny network: proves the script works")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trials = 2 if args.quick else args.trials
    extra = ["--data-dir", args.data_dir] if args.data_dir else []
    extra += ["--no-verify"] if args.no_verify else []
    if args.quick:
        (out / "space.toml").write_text(QUICK_SPACE)
        extra += ["--space", str(out / "space.toml")]
    elif args.epochs is not None:
        (out / "space.toml").write_text(_default_space_with_epochs(args.epochs))
        extra += ["--space", str(out / "space.toml")]
    results = []
    for label, flags in SETUPS:
        results.append(_run_setup(label, flags, out, trials, args.seed, extra))
        print(f"{label}: {results[-1]['wall_seconds']:.1f} s, best "
              f"{results[-1]['best']:.4f}", flush=True)
    report = _report(results, trials, quick=args.quick)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    table = _table(report)
    (out / "results.md").write_text(table + "\n")
    _plot(results, out / "best_vs_time.png")
    print(table)
    return 0


def _default_space_with_epochs(epochs: int) -> str:
    """mnist10's default search space as TOML, with every trial trained `epochs` epochs."""
    from nnscratch.runs.recipes import get_recipe
    from nnscratch.tune.space import default_space

    lines = ["[space]"]
    for name, spec in {**default_space(get_recipe("mnist10")), "epochs": epochs}.items():
        lines.append(f"{name} = {_toml_value(spec)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _run_setup(label: str, flags: list[str], out: Path, trials: int, seed: int,
               extra: list[str]) -> dict[str, Any]:
    """One fresh study: run it as a user would and read its trials back from the database."""
    slug = label.replace(",", "").replace(" ", "-")
    folder = out / slug
    database = folder / "study.db"
    database.unlink(missing_ok=True)
    command = [sys.executable, "-m", "nnscratch", "tune", "--recipe", "mnist10",
               "--trials", str(trials), "--seed", str(seed), "--study", slug, "--out",
               str(folder), "--no-final", "--no-plots", "--quiet", *flags, *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, env=os.environ.copy())
    return {"label": label, "command": command[1:], "process_seconds":
            time.perf_counter() - start, **_read_study(database, slug)}


def _read_study(database: Path, name: str) -> dict[str, Any]:
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{database.resolve()}")
    trials = [t for t in study.trials if t.datetime_start and t.datetime_complete]
    origin = min(t.datetime_start for t in trials)
    ends = sorted(trials, key=lambda t: t.datetime_complete)
    curve, best = [], 0.0
    for trial in ends:
        if trial.state.name == "COMPLETE" and trial.value > best:
            best = trial.value
        curve.append((_seconds(trial.datetime_complete, origin), best))
    states = [t.state.name for t in study.trials]
    return {"curve": curve, "best": best, "wall_seconds": curve[-1][0],
            "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"),
            "failed": states.count("FAIL"),
            "epochs_trained": sum(len(t.intermediate_values) for t in trials)}


def _seconds(moment: datetime, origin: datetime) -> float:
    return (moment - origin).total_seconds()


def _report(results: list[dict[str, Any]], trials: int, *, quick: bool) -> dict[str, Any]:
    target = max(r["best"] for r in results) - WITHIN
    for result in results:
        result["seconds_to_target"] = next(
            (seconds for seconds, best in result["curve"] if best >= target), None)
    one, two = results[1]["wall_seconds"], results[2]["wall_seconds"]
    return {
        "mode": "quick" if quick else "full", "trials": trials, "target": target,
        "speed_up_of_pruning": results[0]["wall_seconds"] / one if one else None,
        "parallel_efficiency": one / (2 * two) if two else None,
        "cpus": os.cpu_count(), "setups": results,
    }


def _table(report: dict[str, Any]) -> str:
    space = "a two-epoch 16-unit space" if report["mode"] == "quick" else (
        "mnist10's default space")
    lines = [
        f"{report['trials']} trials of {space}, all ten digits ({report['mode']} mode, "
        f"{report['cpus']} CPUs; wall time from the first trial's start to the last trial's "
        "end)",
        "",
        "| setup | wall time | complete | pruned | epochs trained | best val. accuracy | "
        f"time to ≥ {report['target']:.4f} |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["setups"]:
        reached = ("not reached" if r["seconds_to_target"] is None
                   else f"{r['seconds_to_target']:.0f} s")
        lines.append(f"| {r['label']} | {r['wall_seconds']:.0f} s | {r['complete']} | "
                     f"{r['pruned']} | {r['epochs_trained']} | {r['best']:.4f} | {reached} |")
    lines += ["", f"Pruning: {report['speed_up_of_pruning']:.2f}x less wall time for the same "
              "trials. Two workers on two cores: parallel efficiency "
              f"{report['parallel_efficiency']:.0%} (time with one worker over twice the time "
              "with two)."]
    return "\n".join(lines)


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for result in results:
        seconds, best = zip(*result["curve"], strict=True)
        ax.step(seconds, best, where="post", label=result["label"])
    ax.set_title("nnscratch tune: best validation accuracy so far")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    figure.savefig(path)


if __name__ == "__main__":
    sys.exit(main())
