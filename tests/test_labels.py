"""Labels that do not fit are errors naming the file and the values, even with ``--no-verify``.

A label file whose 7s became 12s used to lose every 7 silently (and report a fine accuracy
on what was left); now the loader refuses it, and a chosen digit with no examples in a split
is refused too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from _fake_mnist import fake_arrays, write_fake_mnist
from _tamper import snapshot
from nnscratch.cli import main
from nnscratch.data import load_digits


def _data(tmp_path: Path, split: str, old: int, new: int) -> Path:
    arrays = fake_arrays()
    labels = arrays[f"{split}_labels"]
    labels[labels == old] = new
    folder = tmp_path / "mnist"
    write_fake_mnist(folder, arrays)
    return folder


CASES = {
    "test 7s relabelled 12": ("test", 7, 12, "all", "t10k-labels-idx1-ubyte.gz: 1 label(s) are "
                              "not classes of the data set (0..9): 12 (first at index"),
    "train 3s relabelled 255": ("train", 3, 255, (1, 2), "train-labels-idx1-ubyte.gz: 6 "
                                "label(s) are not classes of the data set (0..9): 255"),
    "test 7s relabelled 3": ("test", 7, 3, "all", "t10k-labels-idx1-ubyte.gz: the test split "
                             "has no examples of digit(s) 7, which were chosen"),
    "train 2s relabelled 5": ("train", 2, 5, (1, 2), "train-labels-idx1-ubyte.gz: the train "
                              "split has no examples of digit(s) 2"),
}


@pytest.mark.parametrize("case", CASES)
def test_load_digits_refuses_labels_that_do_not_fit(tmp_path, case):
    split, old, new, digits, message = CASES[case]
    folder = _data(tmp_path, split, old, new)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        load_digits(digits, data_dir=folder, verify=False, download=False, progress=False)


@pytest.mark.parametrize("case", CASES)
def test_train_no_verify_refuses_them_naming_the_file_and_writes_nothing(tmp_path, capsys,
                                                                         case):
    split, old, new, digits, message = CASES[case]
    folder = _data(tmp_path, split, old, new)
    recipe = ["--recipe", "mnist10", "--epochs", "1"] if digits == "all" else []
    before = snapshot(tmp_path)
    argv = ["train", *recipe, "--digits", *map(str, digits if digits != "all" else ["all"]),
            "--data-dir", str(folder), "--no-verify", "--no-download", "--quiet", "--no-plots",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{folder}/{message}" in err, err
    assert snapshot(tmp_path) == before
