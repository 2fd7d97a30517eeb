"""Tests of the install: a small core, and an extra for each program built on it.

``pip install nnscratch`` takes what training, evaluating, predicting and plotting need;
``nnscratch serve`` needs the ``serve`` extra, ``nnscratch tune`` the ``tune`` extra,
``nnscratch export`` the ``onnx`` extra. A command whose extra is missing exits with 1 and one
line naming ``pip install "nnscratch[EXTRA]"`` — tested here by hiding the modules — and the
core neither imports nor needs any of them. The built wheel's metadata proves what a fresh
``pip install .`` takes; ``.ci/release-check.sh`` does the real install into an empty venv.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from nnscratch.cli import EXTRAS, main
from nnscratch.nn.model import build_mlp
from nnscratch.serialization import save_model

ROOT = Path(__file__).resolve().parents[1]
#: The top-level modules of the extras, and what they pull in (SQLAlchemy and Alembic come with
#: Optuna, Starlette and Pydantic with FastAPI).
OPTIONAL_MODULES = ["fastapi", "fastapi_offline", "uvicorn", "starlette", "pydantic", "httptools",
                    "uvloop", "optuna", "sqlalchemy", "alembic", "psycopg", "onnx", "onnxruntime"]
#: The distributions of the core install (names as in pyproject.toml).
CORE = {"numpy", "scipy", "matplotlib", "tqdm", "pillow", "tomli", "tomli-w", "threadpoolctl"}
OPTIONAL_DISTRIBUTIONS = {"fastapi", "fastapi-offline", "uvicorn", "httptools", "uvloop",
                          "optuna", "sqlalchemy", "alembic", "psycopg", "onnx", "onnxruntime"}


@pytest.fixture
def digit_model(tmp_path) -> Path:
    path = tmp_path / "model.npz"
    save_model(path, build_mlp(784, [8], 10, rng=0), list(range(10)),
               metadata={"preprocessing": {"flatten": [28, 28], "scale": "pixel / 255",
                                           "dtype": "float32"}})
    return path


@pytest.mark.parametrize(("command", "module"), [
    ("serve", "fastapi"), ("serve", "fastapi_offline"), ("serve", "uvicorn"),
    ("tune", "optuna"), ("export", "onnx"),
])
def test_a_command_without_its_extra_exits_with_one_line_naming_it(
        tmp_path, digit_model, monkeypatch, capsys, command, module):
    monkeypatch.setitem(sys.modules, module, None)  # what Python does for a missing module
    argv = {"serve": ["serve", str(digit_model), "--port", "0"],
            "tune": ["tune", "--trials", "1", "--out", str(tmp_path / "tune")],
            "export": ["export", str(digit_model), "--out", str(tmp_path / "model.onnx")]}
    assert main(argv[command]) == 1
    captured = capsys.readouterr()
    extra = EXTRAS[command][0]
    assert captured.err == (f"nnscratch: error: nnscratch {command} needs {module}, which is "
                            f'not installed: pip install "nnscratch[{extra}]"\n')
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # nothing written


def test_every_extra_a_command_names_exists():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert {extra for extra, _ in EXTRAS.values()} <= set(extras)


_BLOCKER = """
import importlib.abc, json, sys
BLOCKED = set({blocked!r})
attempts = []

class Blocker(importlib.abc.MetaPathFinder):
    # Every import of an optional module fails, as if it were not installed; and is recorded,
    # so that an import swallowed by a try/except still shows.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
"""


@pytest.mark.system
def test_the_core_imports_no_optional_module_and_trains_without_them(tmp_path, digit_model):
    from _fake_mnist import fake_arrays, write_fake_mnist

    write_fake_mnist(tmp_path / "mnist", fake_arrays(seed=0))
    script = _BLOCKER.format(blocked=OPTIONAL_MODULES) + textwrap.dedent(f"""
        import contextlib, io
        import nnscratch
        from nnscratch.cli import main
        after_import = sorted(attempts)
        codes = {{}}
        for command in ["train", "evaluate", "predict", "plot", "info", "gradcheck", "serve",
                        "tune", "export"]:
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    main([command, "--help"])
                except SystemExit as exit:
                    codes[command] = exit.code
        codes["train"] = main(["train", "--iterations", "5", "--data-dir",
                               {str(tmp_path / "mnist")!r}, "--no-verify", "--no-download",
                               "--out", {str(tmp_path / "run")!r}, "--no-plots", "--quiet"])
        codes["predict"] = main(["predict", {str(tmp_path / "run")!r},
                                 {str(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz")!r},
                                 "--quiet"])
        trained = sorted(attempts)
        codes["serve"] = main(["serve", {str(digit_model)!r}])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(json.dumps({{"after_import": after_import, "trained": trained, "codes": codes,
                          "loaded": loaded}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["after_import"] == []  # import nnscratch, nnscratch.cli: none tried
    assert report["trained"] == []  # every --help, train and predict: none tried
    assert report["loaded"] == []
    assert report["codes"] == {"train": 0, "evaluate": 0, "predict": 0, "plot": 0, "info": 0,
                               "gradcheck": 0, "serve": 1, "tune": 0, "export": 0}
    assert result.stderr.strip().splitlines()[-1] == (
        'nnscratch: error: nnscratch serve needs fastapi, which is not installed: '
        'pip install "nnscratch[serve]"')


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirement_name(line: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    assert match, line
    return re.sub(r"[-_.]+", "-", match.group()).lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this source tree, built offline (no build isolation) from a clean copy."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("setuptools is not installed: the wheel cannot be built offline")
    if int(version.split(".")[0]) < 77:
        pytest.skip(f"setuptools {version} is older than pyproject.toml's build requirement 77")
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(out), str(tree)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("nnscratch-*.whl")
    return path


def _wheel_metadata(wheel: Path) -> tuple[list[str], list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(name).decode("utf-8")
    headers = text.split("\n\n", 1)[0].splitlines()
    requires = [h.split(":", 1)[1].strip() for h in headers if h.startswith("Requires-Dist:")]
    extras = [h.split(":", 1)[1].strip() for h in headers if h.startswith("Provides-Extra:")]
    return requires, extras


@pytest.mark.system
def test_the_wheel_installs_no_web_tuning_or_onnx_package_without_an_extra(wheel):
    requires, extras = _wheel_metadata(wheel)
    core = [r for r in requires if "extra ==" not in r]
    names = [_requirement_name(r) for r in core]
    assert sorted(names) == sorted(CORE)  # each once: threadpoolctl is no longer listed twice
    assert not set(names) & OPTIONAL_DISTRIBUTIONS
    assert {"serve", "tune", "postgres", "onnx", "all", "test"} <= set(extras)

    def extra(name: str) -> set[str]:
        return {_requirement_name(r) for r in requires if re.search(
            rf"extra\s*==\s*['\"]{name}['\"]", r)}

    assert {"fastapi", "fastapi-offline", "uvicorn", "httptools", "uvloop"} == extra("serve")
    assert extra("tune") == {"optuna"} and extra("onnx") == {"onnx"}
    assert {"psycopg", "nnscratch"} == extra("postgres")  # nnscratch[tune] with psycopg
    assert "onnxruntime" in extra("test") and "nnscratch" in extra("test")  # nnscratch[all]


@pytest.mark.system
def test_the_wheel_holds_the_page_and_every_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for static in ("index.html", "pad.js", "style.css"):
        assert f"nnscratch/serve/static/{static}" in names
    packages = {str(p.relative_to(ROOT / "src").as_posix())
                for p in (ROOT / "src" / "nnscratch").rglob("__init__.py")}
    assert packages <= names  # runs/__init__.py among them
    assert "nnscratch/export.py" in names
