"""The benchmark runs end to end in quick mode and writes its table, JSON, Markdown and plots.

Nothing here is timed: quick mode only proves that every task and contender code path works
(the real figures come from a full run, see docs/performance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPARE = ROOT / "benchmarks" / "compare.py"
TASKS = ["tutorial-float64", "tutorial-float32", "epoch-b128", "epoch-b512", "tta-binary",
         "tta-ten", "inference-b1", "inference-b10000", "cnn-epoch"]
FIGURES = ["seconds", "samples_per_second", "gflops", "peak_mib", "compute_dtype", "recipe"]

pytestmark = pytest.mark.system  # run once in CI (pyproject.toml)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path):
    out = tmp_path_factory.mktemp("benchmark")
    completed = subprocess.run(
        [sys.executable, str(COMPARE), "--quick", "--out", str(out), "--data-dir", str(mnist_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    return completed, out


@pytest.mark.slow
def test_quick_run_exits_zero_and_prints_the_table(quick_run) -> None:
    completed, _ = quick_run
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "| task " in completed.stdout
    for key in TASKS:
        assert key in completed.stdout


@pytest.mark.slow
def test_quick_run_writes_json_with_every_task_and_contender(quick_run) -> None:
    _, out = quick_run
    report = json.loads((out / "results.json").read_text())
    assert {"mode", "command", "machine", "settings", "tasks", "targets", "plots",
            "notes"} <= report.keys()
    assert report["mode"] == "quick"
    assert {"cpu", "logical_cpus", "numpy", "numpy_blas", "threads",
            "environment"} <= report["machine"].keys()
    assert [task["key"] for task in report["tasks"]] == TASKS
    for task in report["tasks"]:
        results = task["results"]
        assert results["nnscratch"]["status"] == "ok", task["key"]
        for name in ("pytorch", "sklearn"):
            # A contender whose library is missing is skipped with a note, never an error.
            assert results[name]["status"] in ("ok", "skipped"), (task["key"], results[name])
        assert set(FIGURES) <= results["nnscratch"].keys()
        assert {"nnscratch/pytorch", "nnscratch/sklearn",
                "nnscratch/tutorial-code"} == task["ratios"].keys()
        if task["kind"] == "tutorial":
            # The tutorial's own code learns the same counts as nnscratch, to rounding.
            assert results["tutorial-code"]["status"] == "ok"
            assert abs(results["tutorial-code"]["test_correct"]
                       - results["nnscratch"]["test_correct"]) <= 1
        else:
            assert "tutorial-code" not in results
        if task["kind"] != "tta":
            layouts = results["numpy-gemm"]["layouts"]
            assert layouts and all(layout["fastest"] for layout in layouts)
        if task["kind"] == "tta":
            assert "numpy-gemm" not in results
            assert results["nnscratch"]["curve"]["seconds"]
            assert results["nnscratch"]["recipe"]["hidden"]
        else:
            assert results["numpy-gemm"]["status"] == "ok"
            assert task["ceiling_seconds"] > 0
            assert results["nnscratch"]["ceiling_fraction"] > 0
    names = [target["name"] for target in report["targets"]]
    assert len(names) == 13 and all("nnscratch" in name for name in names)
    cnn = next(task for task in report["tasks"] if task["key"] == "cnn-epoch")
    assert cnn["results"]["sklearn"]["status"] == "skipped"  # scikit-learn has no CNN
    assert cnn["results"]["nnscratch"]["peak_mib"] > 0
    assert cnn["results"]["nnscratch"]["accuracy"] > 0.1  # 4 steps on 512 images


@pytest.mark.slow
def test_quick_run_writes_markdown_and_plots(quick_run) -> None:
    _, out = quick_run
    markdown = (out / "results.md").read_text()
    assert "**Quick mode**" in markdown
    for heading in ("## Results", "## Targets", "## Recipes", "## Time to accuracy"):
        assert heading in markdown
    for key in TASKS:
        assert f"| {key}" in markdown
    report = json.loads((out / "results.json").read_text())
    assert len(report["plots"]) == 2
    for path in report["plots"]:
        assert Path(path).read_bytes().startswith(b"\x89PNG")


@pytest.fixture()
def compare_module(monkeypatch: pytest.MonkeyPatch):
    """benchmarks/compare.py imported as a module (its folder is not a package)."""
    monkeypatch.syspath_prepend(str(COMPARE.parent))
    import compare

    return compare


def test_the_cnn_tasks_gemms_are_those_of_im2col(compare_module) -> None:
    from _tasks import cnn_training_gemms, plan_flops, task_plan

    gemms = cnn_training_gemms(128)
    n1, n2 = 128 * 28 * 28, 128 * 14 * 14
    assert gemms[:5] == [("nn", 32, 9, n1), ("nt", 32, n1, 9),  # conv 1: no input gradient
                         ("nn", 64, 288, n2), ("nt", 64, n2, 288), ("tn", 288, 64, n2)]
    assert ("nn", 128, 3136, 128) in gemms and ("nt", 128, 128, 3136) in gemms
    task = next(t for t in compare_module.build_tasks(quick=False) if t.key == "cnn-epoch")
    plan = task_plan(task, 60_000)
    assert [times for times, _ in plan] == [468, 1]  # 468 batches of 128 and one of 96
    # Forward multiply-adds per image: 28*28*32*9 + 14*14*64*288 + 3136*128 + 128*10.
    forward = 28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 3136 * 128 + 128 * 10
    per_image = plan_flops([(1, cnn_training_gemms(1))]) / 2
    assert per_image == 3 * forward - 28 * 28 * 32 * 9  # no input gradient for conv 1


def test_short_tasks_get_five_repeats_by_default(compare_module) -> None:
    tasks = compare_module.build_tasks(quick=False)
    repeats = compare_module.repeats_per_task(tasks, None, quick=False)
    assert repeats["epoch-b128"] == repeats["inference-b1"] == 5
    assert repeats["tutorial-float64"] == repeats["tta-ten"] == 3
    assert set(compare_module.repeats_per_task(tasks, None, quick=True).values()) == {1}
    assert set(compare_module.repeats_per_task(tasks, 4, quick=False).values()) == {4}


@pytest.mark.parametrize("per_contender", [False, True])
def test_plan_measures_each_pair_as_often_as_its_task_asks(compare_module, per_contender) -> None:
    tasks = [t for t in compare_module.build_tasks(quick=False)
             if t.key in ("tutorial-float32", "epoch-b128")]
    repeats = {"tutorial-float32": 3, "epoch-b128": 5}
    contenders = ["nnscratch", "pytorch"]
    jobs = compare_module.plan_jobs(tasks, contenders, repeats, per_contender)
    runs = [(task.key, name) for job in jobs for task, name, _ in job]
    for key, count in repeats.items():
        for name in [*contenders, compare_module.CEILING]:
            assert runs.count((key, name)) == count
    if not per_contender:
        # Rotated: nnscratch does not always run first.
        firsts = [job[0][1] for job in jobs[::3]]
        assert len(set(firsts)) > 1


def test_serve_latency_quick_run_prints_its_figures(tmp_path: Path) -> None:
    """benchmarks/serve_latency.py drives a real server; quick mode proves it, times nothing."""
    from nnscratch.nn.model import build_mlp
    from nnscratch.serialization import save_model

    model = tmp_path / "model.npz"
    save_model(model, build_mlp(784, [16], 10, rng=0), list(range(10)))
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "serve_latency.py"), str(model), "--quick",
         "--clients", "2", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(completed.stdout)
    assert figures["architecture"] == "784 → 16 ReLU → 10" and figures["requests"] == 30
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"]
    assert figures["requests_per_second"] > 0
    assert set(figures["bare_ms"]) == {"total", "decode", "preprocess", "forward", "json"}
    assert set(figures["in_server_ms"]) == {"total", "decode", "preprocess", "forward", "json"}
    assert 0 < figures["in_server_ms"]["total"] < figures["latency_ms"]["p99"]
    assert figures["server_overhead_ms"] == pytest.approx(
        figures["latency_ms"]["p50"] - figures["bare_ms"]["total"])


@pytest.mark.slow
def test_layouts_quick_prints_each_kernel_sets_table_and_the_choice() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "layouts.py"), "--quick", "--kernels",
         "default,Prescott"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("chooses") == 4  # two columns, two kernel sets
    assert "Katmai" in completed.stdout or "Prescott" in completed.stdout


def test_cnn_layers_quick_times_every_layer_and_the_products() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cnn_layers.py"), "--quick", "--batch-norm"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line.split()[0] for line in completed.stdout.splitlines()[2:]]
    assert rows.count("Conv2D") == 2 and rows.count("BatchNorm") == 2
    assert "ms per step" in completed.stdout and "of the step" in completed.stdout


@pytest.mark.slow
def test_profile_paths_quick_splits_both_paths(mnist_dir: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "profile_paths.py"), "--quick", "--data-dir",
         str(mnist_dir)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    for step in ("inference, 1,000 rows", "one epoch, batch 512", "matrix products",
                 "bias add", "Adam update"):
        assert step in completed.stdout


@pytest.mark.slow
def test_tutorial_split_quick_prints_both_dtypes_and_the_ratios(mnist_dir: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "tutorial_split.py"), "--quick",
         "--data-dir", str(mnist_dir)], cwd=ROOT, capture_output=True, text=True, timeout=600,
        check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in completed.stdout.splitlines()
            if line.startswith("| float")]
    assert [row[0].strip() for row in rows] == ["float64", "float32"]
    for row in rows:
        nnscratch, tutorial, products, *ratios = (float(cell) for cell in row[1:])
        assert min(nnscratch, tutorial, products) > 0
        assert ratios[0] == pytest.approx(nnscratch / tutorial, abs=0.006)
    assert "warning" not in completed.stderr.lower()


def test_drawn_sizes_draws_with_the_pages_sent_brush() -> None:
    """benchmarks/drawn_sizes.py measures what the page sends only if its brush is pad.js's."""
    import importlib.util
    import re

    spec = importlib.util.spec_from_file_location("drawn_sizes",
                                                  ROOT / "benchmarks" / "drawn_sizes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    script = (ROOT / "src" / "nnscratch" / "serve" / "static" / "pad.js").read_text()

    def constant(name: str) -> float:
        return float(re.search(rf"const {name} = ([0-9.]+);", script).group(1))

    assert constant("SENT_BRUSH_SHARE") == module.SENT_BRUSH_SHARE
    assert constant("MIN_SENT_BRUSH") == module.MIN_SENT_BRUSH
    assert constant("SENT_SIZE") == module.SENT
    assert module.sent_brush(1000.0) == module.BRUSH  # never wider than the pad's brush
    assert module.sent_brush(0.0) == module.MIN_SENT_BRUSH
    assert module.sent_brush(100.0) == 15.0
