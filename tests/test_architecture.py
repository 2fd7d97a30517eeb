"""The package's layout holds: the network alone in ``nnscratch.nn``, imports running one way,
and every module path and model file of before the move still working (issue 19).

``lint-imports`` (the contracts in ``pyproject.toml``, run in CI) checks the layers; these tests
check what a contract cannot say: that there is no import cycle anywhere, and that old code
and old files keep working.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import grimp
import numpy as np
import pytest

import nnscratch
from nnscratch._compat import MOVED
from nnscratch.serialization import load_model

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("nnscratch")


def test_the_network_imports_nothing_of_the_toolkit(graph):
    network = {m for m in graph.modules if m == "nnscratch.nn" or m.startswith("nnscratch.nn.")}
    outside = {
        (module, imported)
        for module in network
        for imported in graph.find_modules_directly_imported_by(module)
        if imported not in network and imported != "nnscratch._validation"
    }
    assert not outside, f"nnscratch.nn imports the toolkit: {sorted(outside)}"


def test_there_is_no_import_cycle(graph):
    cycles = sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.find_shortest_chain(importer=imported, imported=module)
    )
    assert not cycles, f"modules that import each other, directly or not: {cycles}"


def test_the_server_is_built_on_the_library_not_the_command_line(graph):
    chain = graph.find_shortest_chain(importer="nnscratch.serve.default_model",
                                      imported="nnscratch.cli")
    assert chain is None, f"nnscratch.serve reaches the command line: {chain}"
    assert not any(graph.chain_exists(importer=module, imported="nnscratch.cli")
                   for module in graph.find_descendants("nnscratch.serve"))


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_each_old_module_path_offers_the_same_objects(old, new):
    moved, current = importlib.import_module(old), importlib.import_module(new)
    public = getattr(current, "__all__", None) or [
        name for name, value in vars(current).items()
        if not name.startswith("__") and getattr(value, "__module__", None) == new
    ]
    assert public, f"{new} has no public names to compare"
    for name in public:
        assert getattr(moved, name) is getattr(current, name), f"{old}.{name}"


def test_old_import_statements_work_in_a_fresh_interpreter():
    """As a user's script written before the move would run them, before anything else."""
    code = "\n".join([
        "from nnscratch.layers import Dense, Dropout, Layer",
        "from nnscratch.training import fit, History",
        "from nnscratch.augment import Augmentation",
        "from nnscratch.recipes import RECIPES, train_recipe",
        "from nnscratch.tune_space import parse_space",
        "import nnscratch.losses, nnscratch.optimizers, nnscratch.gradcheck, nnscratch._kernels",
        "import nnscratch.runs, nnscratch.tune",
        "from nnscratch.runs import write_run, read_run",
        "from nnscratch.tune import TuneOptions",
        "import nnscratch.nn.layers",
        "assert Dense is nnscratch.nn.layers.Dense",
        "assert nnscratch.training.fit is nnscratch.nn.training.fit",
        "print('ok')",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_the_public_api_is_unchanged():
    before = {"SGD", "Adam", "AdamW", "BinaryCrossEntropy", "Dense", "Dropout", "EarlyStopping",
              "History", "Layer", "MeanSquaredError", "NeuralNet", "NeuralNetClassifier",
              "Parameter", "Sequential", "SoftmaxCrossEntropy", "__version__", "activations",
              "augment", "build_mlp", "data", "fit", "gradcheck", "initializers", "layers",
              "load_model", "losses", "metrics", "optimizers", "plotting", "save_model"}
    assert before <= set(nnscratch.__all__)
    for name in before:
        assert getattr(nnscratch, name) is not None
    assert nnscratch.Dense is nnscratch.nn.Dense is nnscratch.layers.Dense
    assert nnscratch.fit is nnscratch.nn.training.fit


def test_a_model_file_written_before_the_move_loads_and_predicts_as_it_did():
    """``tests/data/model-before-nn-package.npz`` was saved by main at c47c693, with the
    probabilities it gave for five inputs; the same file must load and give them again."""
    saved = load_model(DATA / "model-before-nn-package.npz")
    X = np.load(DATA / "model-before-nn-package-inputs.npy")
    expected = np.load(DATA / "model-before-nn-package-proba.npy")
    assert saved.classes.tolist() == [str(digit) for digit in range(10)]
    kinds = [type(layer).__name__ for layer in saved.model.layers]
    assert kinds == ["Dense", "ReLU", "Dropout", "Dense", "LeakyReLU", "Dense", "Tanh", "Dense",
                     "ELU", "Dense", "GELU", "Dense"]
    assert saved.model.dtype == np.float32
    # float32 through another BLAS kernel or thread count rounds differently: a float32 bound.
    np.testing.assert_allclose(saved.predict_proba(X), expected, rtol=1e-5, atol=1e-6)


def test_a_run_folder_written_before_the_move_reads_back():
    """``tests/data/run-before-nn-package/`` is ``nnscratch train --recipe binary-fast --layers 8
    --epochs 1 --digits 3 8 --no-plots`` as main wrote it at c47c693."""
    from nnscratch.runs import read_run

    run = read_run(DATA / "run-before-nn-package")
    assert run.metrics["recipe"] == "binary-fast"
    assert run.saved.classes.tolist() == [3, 8]
    assert [type(layer).__name__ for layer in run.saved.model.layers] == [
        "Dense", "ReLU", "Dropout", "Dense"]


@pytest.mark.slow
def test_a_run_folder_written_before_the_move_evaluates_as_it_did(mnist_dir, capsys):
    import json

    from nnscratch.cli import main

    run = DATA / "run-before-nn-package"
    assert main(["evaluate", str(run), "--data-dir", str(mnist_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    recorded = json.loads((run / "metrics.json").read_text())
    # float32: another BLAS may move a borderline picture; the count may differ by one.
    assert abs(result["correct"] - recorded["test_correct"]) <= 1
    assert result["n_samples"] == recorded["test_size"] == 1984
