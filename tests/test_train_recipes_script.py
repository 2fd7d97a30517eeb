"""examples/train_recipes.py: the Markdown it writes for docs/recipes.md and README (no training).

The script's training runs are checked by a slow test in test_recipes.py; these tests check
what it makes of the results: the fragments, and filling them into Markdown files.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nnscratch.runs.recipes import RECIPES

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_recipes.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_recipes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_recipes"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["train_recipes"]


def _fashion_data():
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot")
    return SimpleNamespace(dataset="fashion-mnist", class_names=names, n_classes=10,
                           test_size=10000)


def _results(*accuracies):
    return [{"seed": seed, "accuracy": a, "correct": round(a * 10000), "seconds": 500.0 + seed}
            for seed, a in enumerate(accuracies)]


def test_readme_row_gives_the_median_run_and_the_task_in_words(script):
    settings = RECIPES["fashion10"].settings
    row = script.readme_row("fashion10", settings, _results(0.905, 0.91, 0.899), _fashion_data())
    assert row.startswith("| `fashion10` | Fashion-MNIST, ten classes, 784-1024-1024-10 ReLU, "
                          "dropout 0.3, augmented (mirror images), Adam, cosine schedule, "
                          f"{settings['epochs']} epochs |")
    assert row.endswith("| 90.50% (9050/10000), median of 3 seeds | 8.3 min |")


def test_confusions_name_the_pairs_mixed_up_most(script):
    matrix = np.diag(np.full(10, 900))
    matrix[6, 0], matrix[0, 6] = 120, 60  # Shirt taken for T-shirt/top, and back
    matrix[4, 2] = 50  # Coat taken for Pullover
    text = script.confusions_fragment("fashion10", {"seed": 1}, _fashion_data(), matrix)
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert lines == [
        "- T-shirt/top and Shirt: 180 (78% of the errors): 60 T-shirt/top taken for Shirt, "
        "120 Shirt for T-shirt/top.",
        "- Pullover and Coat: 50 (22% of the errors): 0 Pullover taken for Coat, 50 Coat for "
        "Pullover.",
    ]
    assert "Of the 230 test images" in text


def test_fill_replaces_marked_blocks_and_readme_rows_and_can_run_again(script, tmp_path):
    page = tmp_path / "recipes.md"
    page.write_text("# Recipes\n\n<!-- train_recipes results -->\nold\n<!-- /train_recipes "
                    "results -->\n\n<!-- train_recipes other -->\nkept\n<!-- /train_recipes "
                    "other -->\n")
    readme = tmp_path / "README.md"
    readme.write_text("| recipe | task | test accuracy | training time here |\n|---|---|---|---|\n"
                      "| `mnist10` | ten | 98.62% | 19.4 s |\n\nAfter the table.\n")
    fragments = {"results": "| a | b |\n|---|---|"}
    rows = {"mnist10": "| `mnist10` | ten | 98.70% | 20.0 s |",
            "fashion10": "| `fashion10` | clothes | 90.50% | 8.3 min |"}
    for _ in range(2):  # a second run refreshes the same places
        assert script.fill(page, fragments, rows) == ["results"]
        assert script.fill(readme, fragments, rows) == ["README row mnist10",
                                                        "README row fashion10"]
        assert page.read_text() == (
            "# Recipes\n\n<!-- train_recipes results -->\n| a | b |\n|---|---|\n"
            "<!-- /train_recipes results -->\n\n<!-- train_recipes other -->\nkept\n"
            "<!-- /train_recipes other -->\n")
        assert readme.read_text() == (
            "| recipe | task | test accuracy | training time here |\n|---|---|---|---|\n"
            "| `mnist10` | ten | 98.70% | 20.0 s |\n| `fashion10` | clothes | 90.50% | 8.3 min |"
            "\n\nAfter the table.\n")


def test_the_docs_have_a_block_for_every_fragment_of_the_two_recipes():
    text = (SCRIPT.parents[1] / "docs" / "recipes.md").read_text()
    for key in ("mnist10-best-results", "mnist10-best-settings", "mnist10-best-classes",
                "mnist10-best-confusions", "fashion10-results", "fashion10-settings",
                "fashion10-classes", "fashion10-confusions"):
        assert f"<!-- train_recipes {key} -->" in text and f"<!-- /train_recipes {key} -->" in text


def test_a_cnn_row_names_its_convolutions(script):
    settings = RECIPES["fashion-cnn"].settings
    row = script.readme_row("fashion-cnn", settings, _results(0.93, 0.931, 0.929),
                            _fashion_data())
    assert row.startswith("| `fashion-cnn` | Fashion-MNIST, ten classes, "
                          "784-[conv32-BN-pool]-[conv64-BN-pool]-128-10 ReLU, dropout 0.1, "
                          "augmented (mirror images), Adam, cosine schedule, "
                          f"{settings['epochs']} epochs |")
    assert row.endswith("| 93.00% (9300/10000), median of 3 seeds | 8.3 min |")
    table = script.settings_fragment("fashion-cnn", _fashion_data())
    assert "| `conv_layers` | [32, 64] |" in table and "| `batch_norm` | True |" in table


def test_the_docs_have_a_block_for_every_fragment_of_the_cnn_recipes():
    text = (SCRIPT.parents[1] / "docs" / "recipes.md").read_text()
    for name in ("mnist-cnn", "fashion-cnn"):
        for part in ("results", "settings", "classes", "confusions"):
            key = f"{name}-{part}"
            assert f"<!-- train_recipes {key} -->" in text and f"<!-- /train_recipes {key} -->" \
                in text, key
