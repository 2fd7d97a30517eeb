"""Digit subsets and preprocessing, from parse_digits to load_digits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _fake_mnist import fake_arrays, write_fake_mnist
from nnscratch.data import (
    ImageDataset,
    load_dataset,
    load_digits,
    parse_classes,
    parse_digits,
    preprocess_images,
    select_digits,
    shuffle,
)

# --- parse_digits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((1, 2), (1, 2)),
        ([2, 1], (2, 1)),
        (["3", "8"], (3, 8)),
        ("1,2", (1, 2)),
        ("4 9 0", (4, 9, 0)),
        ([np.int64(0), "7"], (0, 7)),
        ("all", tuple(range(10))),
        (["ALL"], tuple(range(10))),
        (range(10), tuple(range(10))),
    ],
)
def test_parse_digits(values, expected):
    digits = parse_digits(values)
    assert digits == expected
    assert all(type(d) is int for d in digits)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ((1, 1), r"digits \(1, 1\) repeat 1; list each digit once"),
        (["2", 2, 3], r"repeat 2"),
        ((1, 10), r"digit 10 is out of range; MNIST digits are 0\.\.9"),
        ((-1, 2), r"digit -1 is out of range"),
        (("1", "x"), r"digit 'x' is not a number; give digits 0\.\.9 or 'all'"),
        ((1,), r"give 1 class\(es\), but classification needs at least 2"),
        (7, r"at least 2"),
        ((), r"give 0 class\(es\)"),
        (("all", 1), r"'all' must stand alone"),
        # Numbers are plain digits: punctuation is stripped from names only (issue 22).
        ("-1 3", r"digit '-1' is not a plain number 0\.\.9"),
        ("3 -8", r"digit '-8' is not a plain number"),
        ("+3 4", r"digit '\+3' is not a plain number"),
        ("3. 4", r"digit '3\.' is not a plain number"),
        ("(3) 4", r"digit '\(3\)' is not a plain number"),
        (["-1", "3"], r"digit '-1' is not a plain number"),
    ],
)
def test_parse_digits_rejects(values, match):
    with pytest.raises(ValueError, match=match):
        parse_digits(values)


@pytest.mark.parametrize("value", [1.0, True, None])
def test_parse_digits_rejects_other_types(value):
    with pytest.raises(TypeError, match="give digits as ints or strings"):
        parse_digits([value, 2])


# --- select_digits --------------------------------------------------------------------------------


def test_select_digits_keeps_order_and_relabels():
    labels = np.array([0, 2, 1, 1, 5, 2, 9, 1], dtype=np.uint8)
    images = np.arange(len(labels) * 4).reshape(-1, 2, 2)
    subset, new = select_digits(images, labels, (1, 2))
    np.testing.assert_array_equal(subset, images[[1, 2, 3, 5, 7]])
    np.testing.assert_array_equal(new, [1, 0, 0, 1, 0])
    assert new.dtype == np.int64

    _, reversed_ = select_digits(images, labels, (2, 1))
    np.testing.assert_array_equal(reversed_, [0, 1, 1, 0, 1])


def test_select_digits_many_classes_follow_the_given_order(rng):
    labels = rng.integers(0, 10, 500)
    digits = (7, 3, 0, 9)
    _, new = select_digits(np.zeros((500, 1)), labels, digits)
    kept = labels[np.isin(labels, digits)]
    np.testing.assert_array_equal(np.asarray(digits)[new], kept)


def test_select_digits_returns_a_copy():
    images = np.zeros((3, 2), dtype=np.uint8)
    subset, _ = select_digits(images, np.array([1, 2, 1]), (1, 2))
    subset[...] = 1
    assert images.sum() == 0


@pytest.mark.parametrize(
    ("images", "labels"),
    [(np.zeros((3, 2)), np.zeros(4)), (np.zeros((3, 2)), np.zeros((3, 1))), (np.zeros(()), [1])],
)
def test_select_digits_rejects_mismatched_inputs(images, labels):
    with pytest.raises(ValueError, match="do not pair up"):
        select_digits(images, labels, (1, 2))


# --- preprocess_images ---------------------------------------------------------------------------


def test_preprocess_float64_is_bit_exact(rng):
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    X = preprocess_images(images, np.float64)
    assert X.shape == (7, 784) and X.dtype == np.float64 and X.flags.c_contiguous
    assert np.array_equal(X, images.reshape(7, 784) / 255.0)
    assert X.tobytes() == (images.reshape(7, 784) / 255.0).tobytes()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_preprocess_is_computed_in_the_requested_dtype(rng, dtype):
    images = rng.integers(0, 256, (5, 3, 4), dtype=np.uint8)
    X = preprocess_images(images, dtype)
    expected = images.reshape(5, 12).astype(dtype) / dtype(255)
    assert X.dtype == dtype
    assert X.tobytes() == expected.tobytes()
    assert X.min() >= 0 and X.max() <= 1


def test_preprocess_default_is_float32():
    X = preprocess_images(np.array([[[0, 255], [51, 102]]], dtype=np.uint8))
    assert X.dtype == np.float32
    np.testing.assert_allclose(X, [[0, 1, 0.2, 0.4]], rtol=1e-7)


def test_preprocess_does_not_modify_input():
    images = np.full((2, 2, 2), 255, dtype=np.uint8)
    preprocess_images(images, np.float64)
    assert (images == 255).all()


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.complex64, bool])
def test_preprocess_rejects_non_float_dtype(dtype):
    with pytest.raises(TypeError, match="dtype must be a floating type"):
        preprocess_images(np.zeros((1, 2, 2), dtype=np.uint8), dtype)


def test_preprocess_rejects_already_scaled_images():
    with pytest.raises(TypeError, match=r"expects integer pixels 0\.\.255"):
        preprocess_images(np.zeros((1, 2, 2), dtype=np.float32))


def test_preprocess_rejects_scalar():
    with pytest.raises(ValueError, match="scalar"):
        preprocess_images(np.uint8(3))


# --- shuffle ------------------------------------------------------------------------------------


def test_shuffle_is_deterministic_and_keeps_pairs():
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10) * 10
    X1, y1 = shuffle(X, y, seed=3)
    X2, y2 = shuffle(X, y, seed=3)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(X1[:, 0] * 5, y1)  # rows still match their labels
    assert sorted(y1) == list(y) and not np.array_equal(y1, y)
    expected = np.random.default_rng(3).permutation(10)
    np.testing.assert_array_equal(y1, y[expected])


def test_shuffle_returns_new_arrays():
    X, y = np.arange(5), np.arange(5)
    X1, y1 = shuffle(X, y, seed=0)
    X1[...] = -1
    y1[...] = -1
    np.testing.assert_array_equal(X, np.arange(5))
    np.testing.assert_array_equal(y, np.arange(5))


def test_shuffle_different_seeds_differ():
    y = np.arange(100)
    assert not np.array_equal(shuffle(y, y, 0)[1], shuffle(y, y, 1)[1])


def test_shuffle_rejects_length_mismatch():
    with pytest.raises(ValueError, match="same number of samples"):
        shuffle(np.zeros((3, 2)), np.zeros(4), seed=0)


# --- load_digits ----------------------------------------------------------------------------------


@pytest.fixture
def fake_dir(tmp_path):
    arrays = fake_arrays(n_train=60, n_test=20)
    write_fake_mnist(tmp_path, arrays)
    return tmp_path, arrays


def test_load_digits_on_synthetic_files(fake_dir):
    directory, arrays = fake_dir
    data = load_digits((3, 8), data_dir=directory, verify=False)
    assert isinstance(data, ImageDataset)
    assert data.digits == data.classes == (3, 8) and data.n_classes == 2
    assert data.class_names == ("3", "8") and data.dataset == "mnist"
    assert (data.train_size, data.test_size, data.n_features) == (12, 4, 784)
    assert data.X_train.dtype == np.float64 and data.y_train.dtype == np.int64
    train_images, y_train = select_digits(arrays["train_images"], arrays["train_labels"], (3, 8))
    np.testing.assert_array_equal(data.X_train, train_images.reshape(-1, 784) / 255.0)
    np.testing.assert_array_equal(data.y_train, y_train)
    assert repr(data) == (
        "ImageDataset(dataset='mnist', classes=(3, 8), train_size=12, test_size=4, "
        "n_features=784, dtype=float64)"
    )


def test_load_digits_all_and_float32(fake_dir):
    directory, _ = fake_dir
    data = load_digits("all", data_dir=directory, dtype=np.float32, verify=False)
    assert data.n_classes == 10 and data.train_size == 60 and data.test_size == 20
    assert data.X_train.dtype == np.float32 and data.X_test.dtype == np.float32


def test_load_digits_shuffles_training_set_only(fake_dir):
    directory, _ = fake_dir
    plain = load_digits((1, 2), data_dir=directory, verify=False)
    shuffled = load_digits((1, 2), data_dir=directory, verify=False, shuffle_seed=0)
    again = load_digits((1, 2), data_dir=directory, verify=False, shuffle_seed=0)
    X, y = shuffle(plain.X_train, plain.y_train, 0)
    np.testing.assert_array_equal(shuffled.X_train, X)
    np.testing.assert_array_equal(shuffled.y_train, y)
    np.testing.assert_array_equal(again.X_train, shuffled.X_train)
    np.testing.assert_array_equal(shuffled.X_test, plain.X_test)


def test_load_digits_checks_arguments_before_reading(tmp_path):
    # tmp_path holds no MNIST: a file error here would mean the arguments were checked too late.
    with pytest.raises(ValueError, match="repeat"):
        load_digits((1, 1), data_dir=tmp_path)
    with pytest.raises(TypeError, match="floating type"):
        load_digits((1, 2), data_dir=tmp_path, dtype=np.int64)


def test_digits_dataset_is_frozen(fake_dir):
    directory, _ = fake_dir
    data = load_digits(data_dir=directory, verify=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.classes = (3, 4)


def test_load_dataset_fashion_by_name_and_number(tmp_path, monkeypatch):
    arrays = fake_arrays(seed=4, n_train=60, n_test=20)
    write_fake_mnist(tmp_path / "fashion", arrays)
    monkeypatch.setenv("NNSCRATCH_DATA_FASHION", str(tmp_path / "fashion"))
    data = load_dataset("fashion-mnist", ["Shirt", 0, "ankle boot"], verify=False,
                        download=False)
    assert data.dataset == "fashion-mnist" and data.classes == (6, 0, 9)
    assert data.class_names == ("Shirt", "T-shirt/top", "Ankle boot")
    kept = np.isin(arrays["train_labels"], [6, 0, 9])
    np.testing.assert_array_equal(np.asarray(data.classes)[data.y_train],
                                  arrays["train_labels"][kept])
    assert data.X_train.dtype == np.float64 and data.train_size == 18
    assert load_dataset("fashion-mnist", verify=False, download=False).n_classes == 10


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["Shirt", "T-shirt/top"], (6, 0)),
        (["shirt", "t shirt top", "ANKLE_BOOT"], (6, 0, 9)),
        ("Ankle boot, Bag", (9, 8)),
        ("Sneaker Sandal", (7, 5)),
        ([7, "5"], (7, 5)),
        ("all", tuple(range(10))),
    ],
)
def test_parse_classes_of_fashion_mnist(values, expected):
    assert parse_classes(values, "fashion-mnist") == expected


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (["Shirt", "shirt"], r"classes \(6, 6\) repeat 6; list each class once"),
        (["Sock", "Bag"], r"class 'Sock' is neither a number 0\.\.9 nor a class name of "
                          r"Fashion-MNIST \(T-shirt/top, .*Ankle boot\)"),
        ([3, 10], r"class 10 is out of range; Fashion-MNIST classes are 0\.\.9"),
        (["Bag"], r"give 1 class\(es\), but classification needs at least 2"),
    ],
)
def test_parse_classes_rejects(values, match):
    with pytest.raises(ValueError, match=match):
        parse_classes(values, "fashion-mnist")


def test_unknown_dataset_is_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset 'kmnist'; choose one of 'mnist', "
                                         r"'fashion-mnist'"):
        load_dataset("kmnist", data_dir=tmp_path)


@pytest.mark.slow
def test_load_digits_real_mnist(mnist_dir):
    data = load_digits((1, 2), data_dir=mnist_dir, download=False)
    assert (data.train_size, data.test_size, data.n_features) == (12700, 2167, 784)
    assert np.bincount(data.y_train).tolist() == [6742, 5958]
    assert np.bincount(data.y_test).tolist() == [1135, 1032]
    assert data.X_train.dtype == np.float64
    assert data.X_train.min() == 0.0 and data.X_train.max() == 1.0


@pytest.mark.slow
def test_load_dataset_real_fashion_mnist(fashion_dir):
    data = load_dataset("fashion-mnist", data_dir=fashion_dir, dtype=np.float32, download=False)
    assert (data.train_size, data.test_size) == (60000, 10000)
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.class_names[9] == "Ankle boot"
