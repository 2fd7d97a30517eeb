"""Turn raw measurements into the summary, the targets check, the table and the plots.

Each (task, contender) pair was measured ``repeats`` times; the summary keeps every repeat and
reports the median. Derived figures: samples/s = samples / seconds; effective GFLOP/s = FLOPs
of the task's GEMMs / seconds (not counting the element-wise work, so it is comparable across
contenders); fraction of the GEMM ceiling = ceiling seconds / seconds (1.0 would mean that the
whole run cost no more than its matrix products timed alone); ratios = nnscratch seconds /
other seconds (below 1 means nnscratch is faster).

What is left out: statistics beyond the median (every repeat is in ``results.json``).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from _tasks import CEILING, CONTENDERS, TUTORIAL_CODE

LABELS = {"nnscratch": "nnscratch", "pytorch": "PyTorch", "sklearn": "scikit-learn",
          CEILING: "NumPy GEMM ceiling", TUTORIAL_CODE: "tutorial's own code"}


# -- machine ----------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (how busy the machine was), or None."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(value, 2) for value in os.getloadavg()]


def machine_info(threads: int) -> dict[str, Any]:
    """What ran the benchmark: CPU, cores, memory, versions, BLAS, thread settings."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info

        numpy_blas = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    except ImportError:
        numpy_blas = []
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": numpy_blas,
        "torch": package_version("torch"),
        "scikit-learn": package_version("scikit-learn"),
        "threadpoolctl": package_version("threadpoolctl"),
        "threads": threads,
        "environment": {name: os.environ.get(name) for name in (
            "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "load_average_start": load_average(),
    }


# -- summary ----------------------------------------------------------------------------------
def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise_pair(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of a (task, contender) pair's repeats, with every repeat's seconds kept."""
    ok = [r for r in reps if r.get("status") == "ok"]
    if not ok:
        first = reps[0]
        summary = {"status": first.get("status", "error")}
        summary.update({key: first[key] for key in ("note", "error") if first.get(key)})
        return summary
    # A time-to-accuracy repeat that never reached the target counts as infinitely slow.
    keys = [math.inf if r["seconds"] is None else r["seconds"] for r in ok]
    ordered = sorted(range(len(ok)), key=keys.__getitem__)
    middle = ok[ordered[(len(ok) - 1) // 2]]
    seconds = statistics.median(keys)
    summary = {
        "status": "ok",
        "seconds": None if math.isinf(seconds) else seconds,
        "reps_seconds": [r["seconds"] for r in ok],
        "repeats": len(ok),
        "samples": middle.get("samples"),
        "flops": middle.get("flops"),
        "peak_mib": _median([r.get("peak_mib") for r in ok]),
        "peak_rss_mib": _median([r.get("peak_rss_mib") for r in ok]),
        "memory_method": middle.get("memory_method"),
    }
    for key in ("accuracy", "test_correct", "train_correct", "n_test", "n_train", "compute_dtype",
                "recipe", "reached", "epochs", "train_seconds", "curve", "layouts"):
        if key in middle:
            summary[key] = middle[key]
    if len(ok) < len(reps):
        summary["failed_repeats"] = len(reps) - len(ok)
    return summary


def summarise(tasks: list[Any], raw: dict[str, dict[str, list[dict[str, Any]]]]
              ) -> list[dict[str, Any]]:
    """One entry per task: its definition, each contender's summary and the ratios."""
    entries = []
    for task in tasks:
        results = {name: summarise_pair(reps) for name, reps in raw[task.key].items()}
        ceiling = results.get(CEILING, {}).get("seconds")
        for result in results.values():
            if result["status"] != "ok":
                continue
            # Throughput while training: for time to accuracy, over all the epochs it trained.
            busy = result.get("train_seconds", result["seconds"])
            result["samples_per_second"] = (result["samples"] / busy
                                            if result.get("samples") and busy else None)
            result["gflops"] = (result["flops"] / busy / 1e9
                                if result.get("flops") and busy else None)
            result["ceiling_fraction"] = (ceiling / result["seconds"]
                                          if ceiling and result["seconds"] else None)
        mine = results.get("nnscratch", {}).get("seconds")
        ratios = {}
        for other in ("pytorch", "sklearn", TUTORIAL_CODE):
            theirs = results.get(other, {}).get("seconds")
            ratios[f"nnscratch/{other}"] = mine / theirs if mine and theirs else None
        entries.append({**task.as_dict(), "ceiling_seconds": ceiling, "results": results,
                        "ratios": ratios})
    return entries


# -- targets ---------------------------------------------------------------------------------
def _target(name: str, measured: float | None, limit: float, comparison: str,
            detail: str) -> dict[str, Any]:
    met = None if measured is None else (measured <= limit if comparison == "<="
                                         else measured >= limit)
    return {"name": name, "measured": measured, "limit": limit, "comparison": comparison,
            "met": met, "detail": detail}


def evaluate_targets(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it was met (None when the
    figures are missing)."""
    by_key = {entry["key"]: entry for entry in entries}

    def ratio(key: str, other: str) -> float | None:
        return by_key[key]["ratios"][f"nnscratch/{other}"] if key in by_key else None

    def result(key: str, contender: str = "nnscratch") -> dict[str, Any]:
        return by_key.get(key, {}).get("results", {}).get(contender, {})

    # Issue 23's targets, read against the fastest-layout ceiling and the tutorial's own code.
    targets = []
    for dtype in ("float64", "float32"):
        key = f"tutorial-{dtype}"
        targets.append(_target(f"tutorial, {dtype}: nnscratch / the tutorial's own code",
                               ratio(key, TUTORIAL_CODE), 0.8, "<=", "training seconds"))
        floor = by_key.get(key, {}).get("ceiling_seconds")
        mine = result(key).get("seconds")
        targets.append(_target(f"tutorial, {dtype}: nnscratch / its fastest-layout GEMM floor",
                               mine / floor if mine and floor else None, 1.15, "<=",
                               "nnscratch seconds / the same GEMMs alone, each in its fastest "
                               "layout"))
    fastest_other = [value for value in (ratio("inference-b10000", "pytorch"),
                                         ratio("inference-b10000", "sklearn"))
                     if value is not None]
    targets += [
        _target("inference, 10,000 rows: nnscratch / the faster of PyTorch and scikit-learn",
                max(fastest_other) if fastest_other else None, 1.0, "<=", "seconds"),
        _target("inference, one row: nnscratch / PyTorch", ratio("inference-b1", "pytorch"),
                0.7, "<=", "seconds"),
        _target("epoch, ten digits, batch 128: nnscratch / PyTorch", ratio("epoch-b128", "pytorch"),
                0.8, "<=", "seconds for one epoch"),
        _target("epoch, ten digits, batch 512: nnscratch / PyTorch", ratio("epoch-b512", "pytorch"),
                1.0, "<=", "seconds for one epoch"),
    ]
    f32, f64 = result("tutorial-float32"), result("tutorial-float64")
    if f32.get("test_correct") is not None and f64.get("test_correct") is not None:
        difference = float(abs(f32["test_correct"] - f64["test_correct"]))
        detail = (f"test correct: float32 {f32['test_correct']}, float64 {f64['test_correct']}; "
                  f"train correct: float32 {f32.get('train_correct')}, "
                  f"float64 {f64.get('train_correct')}")
    else:
        difference, detail = None, "needs both tutorial tasks"
    targets.append(_target("tutorial: |float32 - float64| test examples correct (nnscratch)",
                           difference, 1, "<=", detail))
    for key, label in (("tta-binary", "99.5% on 1 vs 2"), ("tta-ten", "98.0% on ten digits")):
        targets.append(_target(f"time to {label}: nnscratch / PyTorch", ratio(key, "pytorch"),
                               0.8, "<=", "seconds to reach the target, each with its recipe"))
    targets.append(_target("cnn epoch, ten digits, batch 128: nnscratch / PyTorch",
                           ratio("cnn-epoch", "pytorch"), 0.8, "<=", "seconds for one epoch"))
    targets.append(_target("cnn epoch: nnscratch peak memory (MiB)",
                           result("cnn-epoch").get("peak_mib"), 2048, "<=",
                           "resident memory the training epoch added at its peak"))
    return targets


# -- rendering --------------------------------------------------------------------------------
def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _accuracy(result: dict[str, Any]) -> str:
    accuracy = result.get("accuracy")
    if accuracy is None:
        return "—"
    text = f"{100 * accuracy:.2f}%"
    if result.get("test_correct") is not None:
        text += f" ({result['test_correct']}/{result['n_test']})"
    return text


def table_rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    """The rows of the one table: task, contender, then the figures."""
    rows = []
    for entry in entries:
        order = [*CONTENDERS, TUTORIAL_CODE, CEILING]
        for name in sorted(entry["results"], key=order.index):
            result = entry["results"][name]
            label = LABELS[name]
            if result["status"] != "ok":
                where = "see the notes" if result["status"] == "skipped" else "see results.json"
                rows.append([entry["key"], label, result["status"], "", "", "", "", where, "", ""])
                continue
            seconds = _seconds(result["seconds"])
            if entry["kind"] == "tta" and not result.get("reached"):
                seconds = f"not reached ({result.get('epochs')} ep, " \
                          f"{_seconds(result.get('train_seconds'))} s)"
            elif entry["kind"] == "tta":
                seconds += f" ({result.get('epochs')} ep)"
            ratios = entry["ratios"] if name == "nnscratch" else {}
            rows.append([
                entry["key"], label, seconds, _number(result.get("samples_per_second")),
                _number(result.get("gflops"), 1), _percent(result.get("ceiling_fraction")),
                _number(result.get("peak_mib"), 1), _accuracy(result),
                _number(ratios.get("nnscratch/pytorch"), 2),
                _number(ratios.get("nnscratch/sklearn"), 2),
            ])
    return rows


HEADER = ["task", "contender", "seconds", "samples/s", "GFLOP/s", "of GEMM ceiling",
          "peak MiB", "test accuracy", "÷ PyTorch", "÷ sklearn"]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table padded into aligned columns, readable as plain text too."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def targets_table(targets: list[dict[str, Any]]) -> str:
    rows = []
    for t in targets:
        met = {True: "yes", False: "NO", None: "—"}[t["met"]]
        measured = "—" if t["measured"] is None else f"{t['measured']:.3g}"
        rows.append([t["name"], measured, f"{t['comparison']} {t['limit']:g}", met])
    return markdown_table(["target", "measured", "limit", "met"], rows)


def _blas_line(machine: dict[str, Any]) -> str:
    pools = machine.get("numpy_blas") or []
    if not pools:
        return "unknown"
    pool = pools[0]
    return (f"{pool.get('internal_api')} {pool.get('version')} "
            f"({pool.get('architecture')} kernels, {pool.get('threading_layer')} threads)")


def _repeats_line(repeats: int | dict[str, int]) -> str:
    """``"3"``, or per task when the counts differ: ``"3 for tutorial-float64, ...; 5 for ..."``."""
    if isinstance(repeats, int):
        return str(repeats)
    counts = sorted(set(repeats.values()))
    if len(counts) == 1:
        return str(counts[0])
    groups = []
    for count in counts:
        keys = ", ".join(key for key, n in repeats.items() if n == count)
        groups.append(f"{count} for {keys}")
    return "; ".join(groups)


def layout_lines(entries: list[dict[str, Any]]) -> list[str]:
    """The "Layouts" section: which layout won each product of the GEMM ceiling (and by how much
    against nnscratch's storage), and which layout nnscratch's ``matmul`` chose for each."""
    lines = ["", "## Layouts", "",
             "GEMM ceiling: each product timed in its 8 layouts (`AB>C`: A and B stored row-major "
             "`C` or as a transpose `F`, the result written row-major `C` or as C^T `F`); the "
             "fastest counts. nnscratch: the layout its `matmul` chose on first sight of each "
             "product (`direct` = `a @ b`, `transposed` = `(b.T @ a.T).T`).", ""]
    for entry in entries:
        ceiling = entry["results"].get(CEILING, {})
        for layout in ceiling.get("layouts") or []:
            lines.append(f"- `{entry['key']}` ceiling `{layout['gemm']}`: fastest "
                         f"`{layout['fastest']}`, {layout['fastest_over_nnscratch']:.2f} x the "
                         f"time of nnscratch's `{layout['nnscratch_layout']}`")
        for layout in entry["results"].get("nnscratch", {}).get("layouts") or []:
            times = ", ".join(f"{name} {ms:.3g} ms" for name, ms in layout["ms"].items())
            lines.append(f"- `{entry['key']}` nnscratch `{layout['gemm']}`: "
                         f"`{layout['layout']}` ({times})")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """``results.md``: the machine, the command, the table, the targets and the recipes."""
    machine = report["machine"]
    quick = report["mode"] == "quick"
    lines = ["# nnscratch benchmark results", ""]
    if quick:
        lines += ["**Quick mode**: tiny sizes that only prove every code path works. These "
                  "figures say nothing about speed; run without `--quick` for real ones.", ""]
    lines += [
        f"- Command: `{report['command']}`",
        f"- Started {report['started']}, took {report['wall_seconds']:.0f} s; "
        f"repeats per task and contender: {_repeats_line(report['settings']['repeats'])}; "
        "median reported, contenders alternated.",
        f"- CPU: {machine['cpu']}, {machine['usable_cpus']} usable of {machine['logical_cpus']} "
        f"logical CPUs, {machine['memory_gib']:.0f} GiB"
        if machine.get("memory_gib") else f"- CPU: {machine['cpu']}",
        f"- Threads per contender: {machine['threads']}; "
        f"OPENBLAS_CORETYPE={machine['environment'].get('OPENBLAS_CORETYPE')}",
        f"- NumPy {machine['numpy']} with {_blas_line(machine)}; PyTorch {machine['torch']}; "
        f"scikit-learn {machine['scikit-learn']}; Python {machine['python']}",
        f"- Load average at start {machine.get('load_average_start')}, at end "
        f"{machine.get('load_average_end')}",
        "",
        "## Results",
        "",
        markdown_table(HEADER, table_rows(report["tasks"])),
        "",
        "seconds: median wall time of the timed work (for `tta-*`: training seconds until the "
        "first epoch whose test accuracy reached the target, evaluation excluded). "
        "÷ columns: nnscratch seconds over the other's (below 1: nnscratch is faster). "
        "peak MiB: resident memory the work added at its peak.",
        "",
        "## Targets",
        "",
        targets_table(report["targets"]),
        "",
        "## Recipes",
        "",
    ]
    for entry in report["tasks"]:
        for name, result in entry["results"].items():
            recipe = result.get("recipe")
            if recipe and name != CEILING:
                if isinstance(recipe, dict):
                    recipe = ", ".join(f"{key}={value}" for key, value in recipe.items())
                lines.append(f"- `{entry['key']}` {LABELS[name]}: `{recipe}`")
    lines += layout_lines(report["tasks"])
    if report.get("plots"):
        lines += ["", "## Time to accuracy", ""]
        lines += [f"![{Path(p).stem}]({Path(p).name})" for p in report["plots"]]
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def plot_curves(entries: list[dict[str, Any]], out: Path) -> list[str]:
    """One time-to-accuracy PNG per ``tta`` task; returns the paths written."""
    from nnscratch.plotting import plot_time_to_accuracy

    paths = []
    for entry in entries:
        if entry["kind"] != "tta":
            continue
        curves = {}
        for name, result in entry["results"].items():
            curve = result.get("curve")
            if result["status"] == "ok" and curve and curve["seconds"]:
                curves[LABELS[name]] = (curve["seconds"], curve["accuracy"])
        if curves:
            path = out / f"time_to_accuracy_{entry['key']}.png"
            plot_time_to_accuracy(curves, target=entry["params"]["target"], path=path)
            paths.append(str(path))
    return paths
