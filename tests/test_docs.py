"""The documentation stays true: its Python examples run, and its code excerpts are our code.

``docs/tutorial.md`` quotes lines of ``src/nnscratch`` in ```text blocks, each after the name of
the file it comes from (``src/nnscratch/nn/layers.py``); each quoted line must still be in that
file, so the tutorial cannot drift from the code it explains, nor point at the wrong file.
Its ```python blocks run top to bottom in one namespace, as a reader would run them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCE_FILE = re.compile(r"src/nnscratch/[\w/]+\.py")


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


def test_tutorial_excerpts_are_verbatim_lines_of_the_file_they_name():
    text = (DOCS / "tutorial.md").read_text()
    excerpts = list(re.finditer(r"```text\n(.*?)```", text, re.S))
    assert excerpts, "the tutorial quotes no code"
    missing = []
    for excerpt in excerpts:
        named = SOURCE_FILE.findall(text, 0, excerpt.start())
        assert named, "an excerpt comes before any source file is named"
        source = ROOT / named[-1]
        assert source.is_file(), f"docs/tutorial.md names {named[-1]}, which does not exist"
        lines = {line.strip() for line in source.read_text().splitlines()}
        missing += [
            f"{named[-1]}: {line.strip()}"
            for line in excerpt.group(1).splitlines()
            if line.strip() and line.strip() != "..." and line.strip() not in lines
        ]
    assert not missing, f"docs/tutorial.md quotes lines not in the file it names: {missing}"


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
