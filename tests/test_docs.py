"""The documentation stays true: its Python examples run, and its code excerpts are our code.

``docs/tutorial.md`` quotes lines of ``src/nnscratch`` in ```text blocks; each quoted line must
still be in the source, so the tutorial cannot drift from the code it explains. Its ```python
blocks run top to bottom in one namespace, as a reader would run them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCE_LINES = {
    line.strip()
    for path in (ROOT / "src" / "nnscratch").rglob("*.py")
    for line in path.read_text().splitlines()
}


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


def test_tutorial_excerpts_are_verbatim_source_lines():
    excerpts = _blocks(DOCS / "tutorial.md", "text")
    assert excerpts, "the tutorial quotes no code"
    missing = [
        line.strip()
        for block in excerpts
        for line in block.splitlines()
        if line.strip() and line.strip() != "..." and line.strip() not in SOURCE_LINES
    ]
    assert not missing, f"docs/tutorial.md quotes lines that are not in src/nnscratch: {missing}"


def test_tutorial_python_blocks_run(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # anything a block writes lands in a scratch folder
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for index, code in enumerate(_blocks(DOCS / "tutorial.md", "python")):
        exec(compile(code, f"docs/tutorial.md:block{index}", "exec"), namespace)


#: The quickstart's tutorial call, and the shorter one run here: its 1000 iterations (over three
#: minutes) are run once, by ``test_classic.py``'s ``tutorial_run``, with the same recipe, and
#: checked there against the tutorial's own figures.
TUTORIAL_CALL = "learning_rate=0.1, n_iterations=1000)"
SHORTER_CALL = "learning_rate=0.1, n_iterations=100)"


@pytest.mark.slow
def test_quickstart_python_blocks_run(monkeypatch, tmp_path, mnist_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNSCRATCH_DATA", str(mnist_dir))
    blocks = _blocks(DOCS / "quickstart.md", "python")
    assert sum(block.count(TUTORIAL_CALL) for block in blocks) == 1
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for index, code in enumerate(blocks):
        code = code.replace(TUTORIAL_CALL, SHORTER_CALL)
        exec(compile(code, f"docs/quickstart.md:block{index}", "exec"), namespace)
