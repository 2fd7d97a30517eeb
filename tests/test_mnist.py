"""load_mnist: naming styles, verification, search order, and downloads from a local server.

Synthetic MNIST-shaped files (60 train, 10 test) stand in for the real ones; their digests replace
the real ones through ``use_hashes_of`` when a test needs ``verify=True``. Downloads only ever
talk to an HTTP server on 127.0.0.1. Every test of where the files are looked for, how they are
verified and how they are downloaded runs for both data sets, MNIST and Fashion-MNIST (the
``dataset`` fixture). Tests marked ``slow`` read the real files from ``NNSCRATCH_DATA`` and
``NNSCRATCH_DATA_FASHION``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import re
import time

import numpy as np
import pytest

from _fake_mnist import (
    STYLES,
    assert_same,
    fake_arrays,
    gzipped,
    idx_bytes,
    use_hashes_of,
    write_fake_mnist,
)
from _http import refused_url, serve, truncated
from nnscratch.data import (
    DATASETS,
    FASHION_MNIST,
    MIRRORS,
    MNIST,
    MNIST_FILES,
    IDXFormatError,
    MNISTChecksumError,
    MNISTNotFoundError,
    default_cache_dir,
    load_mnist,
    write_idx,
)
from nnscratch.data import mnist as mnist_module


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """No real data folder or user cache leaks in; localhost is never proxied."""
    for source in DATASETS.values():
        monkeypatch.delenv(source.env_var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(params=["mnist", "fashion-mnist"])
def dataset(request):
    """Each data set in turn: the same mechanism must serve both."""
    return request.param


@pytest.fixture
def env_var(dataset):
    return DATASETS[dataset].env_var


@pytest.fixture
def cache(tmp_path, dataset):
    return tmp_path / "xdg" / "nnscratch" / dataset


def _files_in(directory):
    return sorted(os.listdir(directory)) if directory.exists() else []


# --- reading a folder --------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_loads_both_naming_styles(tmp_path, style, gz):
    arrays = fake_arrays()
    write_fake_mnist(tmp_path / "d", arrays, style=style, gz=gz)
    loaded = load_mnist(tmp_path / "d", verify=False, download=False)
    assert isinstance(loaded, MNIST)
    assert_same(loaded, arrays)


def test_compression_is_decided_by_bytes(tmp_path):
    arrays = fake_arrays()
    paths = write_fake_mnist(tmp_path, arrays, gz=True)
    # A gzipped file without .gz and a raw file with .gz both load.
    paths["train_images"].rename(tmp_path / "train-images-idx3-ubyte")
    paths["test_labels"].write_bytes(idx_bytes(arrays["test_labels"]))
    assert_same(load_mnist(tmp_path, verify=False), arrays)


def test_mixed_styles_in_one_folder(tmp_path):
    arrays = fake_arrays()
    write_fake_mnist(tmp_path, {k: arrays[k] for k in ("train_images", "test_labels")})
    write_fake_mnist(
        tmp_path, {k: arrays[k] for k in ("train_labels", "test_images")}, style="dotted"
    )
    assert_same(load_mnist(tmp_path, verify=False), arrays)


def test_verify_passes_for_the_reference_content(tmp_path, monkeypatch, dataset):
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)
    write_fake_mnist(tmp_path, arrays, style="dotted", gz=False)
    assert_same(load_mnist(tmp_path, dataset=dataset), arrays)


def test_verify_hashes_decompressed_content(tmp_path, monkeypatch, dataset):
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)
    paths = write_fake_mnist(tmp_path, arrays)
    # A different gzip header (time stamp, file name, level) must not matter.
    data = idx_bytes(arrays["train_images"])
    paths["train_images"].write_bytes(gzip.compress(data, compresslevel=1, mtime=123456))
    assert_same(load_mnist(tmp_path, dataset=dataset), arrays)


def test_checksum_mismatch(tmp_path, dataset):
    arrays = fake_arrays()
    paths = write_fake_mnist(tmp_path, arrays)
    source = DATASETS[dataset]
    expected = source.files["train_images"].sha256
    actual = hashlib.sha256(idx_bytes(arrays["train_images"])).hexdigest()
    pattern = (
        re.escape(str(paths["train_images"]))
        + rf": SHA-256 mismatch for {source.title} train-images-idx3-ubyte: expected {expected}, "
        + rf"found {actual}.*not the original {source.title}.*verify=False.*--no-verify"
    )
    with pytest.raises(MNISTChecksumError, match=pattern) as info:
        load_mnist(tmp_path, dataset=dataset)
    assert isinstance(info.value, ValueError)
    assert (info.value.expected, info.value.actual) == (expected, actual)


@pytest.mark.parametrize(("asked", "found"), [("mnist", FASHION_MNIST), ("fashion-mnist", None)])
def test_checksum_mismatch_names_the_data_set_a_file_belongs_to(tmp_path, monkeypatch, asked,
                                                                found):
    # Fashion-MNIST's files in a folder read as MNIST: say so, and how to load them.
    arrays = fake_arrays()
    write_fake_mnist(tmp_path, arrays)
    found = found or DATASETS["mnist"]
    use_hashes_of(monkeypatch, arrays, found.name)
    with pytest.raises(MNISTChecksumError) as info:
        load_mnist(tmp_path, dataset=asked)
    assert (f"It is {found.title}'s train-images-idx3-ubyte, not "
            f"{DATASETS[asked].title}'s: load it as dataset='{found.name}' "
            f"(CLI: --dataset {found.name})") in str(info.value)
    assert "delete it" not in str(info.value)


def test_swapped_train_and_test_files_say_which_file_is_missing(tmp_path, monkeypatch, dataset):
    # Before: "It is MNIST's t10k-images-idx3-ubyte, not MNIST's" (issue 22).
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)
    write_fake_mnist(tmp_path, {**arrays, "train_images": arrays["test_images"]})
    title = DATASETS[dataset].title
    with pytest.raises(MNISTChecksumError) as info:
        load_mnist(tmp_path, dataset=dataset)
    message = str(info.value)
    assert (f"It is {title}'s t10k-images-idx3-ubyte: this is the test-set file; the "
            "training-set file train-images-idx3-ubyte is missing") in message
    assert "not " + title not in message


@pytest.mark.parametrize("verify", [True, False])
def test_a_file_and_its_gz_must_hold_the_same_content(tmp_path, monkeypatch, dataset, verify):
    # Before: the uncompressed file was used silently, unverified with --no-verify (issue 22).
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)
    write_fake_mnist(tmp_path, arrays, gz=True)
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(idx_bytes(arrays["test_labels"]))
    with pytest.warns(UserWarning, match=r"holds t10k-labels-idx1-ubyte and "
                                         r"t10k-labels-idx1-ubyte\.gz with the same content; "
                                         r"using t10k-labels-idx1-ubyte\."):
        assert_same(load_mnist(tmp_path, dataset=dataset, verify=verify), arrays)
    other = (arrays["test_labels"] + 1) % 10
    raw.write_bytes(idx_bytes(other.astype(np.uint8)))
    with pytest.raises(ValueError, match=r"holds t10k-labels-idx1-ubyte and "
                                         r"t10k-labels-idx1-ubyte\.gz with different contents "
                                         r"\(t10k-labels-idx1-ubyte is no file of a known data "
                                         r"set; t10k-labels-idx1-ubyte\.gz is .*'s "
                                         r"t10k-labels-idx1-ubyte\).*remove the other"):
        load_mnist(tmp_path, dataset=dataset, verify=verify)


def test_corrupt_file_raises_idx_error(tmp_path, dataset):
    paths = write_fake_mnist(tmp_path, fake_arrays())
    paths["test_labels"].write_bytes(paths["test_labels"].read_bytes()[:-4])
    with pytest.raises(IDXFormatError, match=re.escape(str(paths["test_labels"]))):
        load_mnist(tmp_path, dataset=dataset, verify=False)


def test_images_and_labels_swapped(tmp_path, dataset):
    arrays = fake_arrays()
    arrays["train_images"], arrays["train_labels"] = arrays["train_labels"], arrays["train_images"]
    write_fake_mnist(tmp_path, arrays)
    title = DATASETS[dataset].title
    with pytest.raises(ValueError, match=rf"{title} train-images-idx3-ubyte must hold uint8 of "
                                         "rank 3"):
        load_mnist(tmp_path, dataset=dataset, verify=False)


def test_non_uint8_images(tmp_path):
    arrays = fake_arrays()
    paths = write_fake_mnist(tmp_path, arrays)
    write_idx(paths["test_images"], arrays["test_images"].astype(np.float32))
    with pytest.raises(ValueError, match=r"t10k-images.*holds float32 of shape \(10, 28, 28\)"):
        load_mnist(tmp_path, verify=False)


@pytest.mark.parametrize(("key", "size"), [("test_images", 32), ("train_images", 27)])
def test_images_of_the_wrong_size_are_refused_at_load_naming_the_file(tmp_path, key, size):
    arrays = fake_arrays()
    rng = np.random.default_rng(1)
    arrays[key] = rng.integers(0, 256, (len(arrays[key]), size, size), dtype=np.uint8)
    paths = write_fake_mnist(tmp_path, arrays)
    with pytest.raises(ValueError, match=re.escape(str(paths[key])) + rf": MNIST .* must hold "
                                         rf"28×28 images, but it holds {size}×{size} ones.*"
                                         r"resize its images to 28×28"):
        load_mnist(tmp_path, verify=False)


def test_the_wrong_size_is_refused_before_any_training(tmp_path):
    from nnscratch.data import load_digits

    arrays = fake_arrays()
    arrays["test_images"] = np.zeros((10, 32, 32), dtype=np.uint8)
    write_fake_mnist(tmp_path, arrays)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: MNIST .* 32×32"):
        load_digits((1, 2), data_dir=tmp_path, verify=False, progress=False)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_named_pipe_with_an_mnist_name_is_not_read(tmp_path):
    """``_find_files`` takes only regular files: a pipe named like MNIST counts as missing."""
    paths = write_fake_mnist(tmp_path, fake_arrays())
    paths["train_labels"].unlink()
    os.mkfifo(paths["train_labels"])
    with pytest.raises(MNISTNotFoundError, match=r"lacks train-labels-idx1-ubyte\[\.gz\]"):
        load_mnist(tmp_path, verify=False)


def test_image_and_label_counts_must_agree(tmp_path):
    arrays = fake_arrays()
    arrays["train_labels"] = arrays["train_labels"][:-1]
    write_fake_mnist(tmp_path, arrays)
    with pytest.raises(ValueError, match=r"holds 60 images but .* holds 59 labels"):
        load_mnist(tmp_path, verify=False)


# --- where it looks ------------------------------------------------------------------------------


def test_explicit_data_dir_missing_files_is_an_error(tmp_path, monkeypatch, dataset, env_var,
                                                     cache):
    write_fake_mnist(tmp_path / "env", fake_arrays())  # a complete fallback that must be ignored
    monkeypatch.setenv(env_var, str(tmp_path / "env"))
    paths = write_fake_mnist(tmp_path / "asked", fake_arrays())
    paths["test_images"].unlink()
    paths["train_labels"].unlink()
    pattern = (
        re.escape(str(tmp_path / "asked"))
        + r" lacks train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\]\. "
        + rf"Put the four {DATASETS[dataset].title} files there.*\${env_var} or the cache at "
        + re.escape(str(cache))
    )
    with pytest.raises(MNISTNotFoundError, match=pattern) as info:
        load_mnist(tmp_path / "asked", dataset=dataset, verify=False)
    assert isinstance(info.value, FileNotFoundError)


def test_explicit_data_dir_that_does_not_exist(tmp_path):
    with pytest.raises(MNISTNotFoundError, match=r"nowhere does not exist"):
        load_mnist(tmp_path / "nowhere")


def test_explicit_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(MNISTNotFoundError, match=r"file is not a directory"):
        load_mnist(tmp_path / "file")


def test_search_order(tmp_path, monkeypatch, dataset, env_var, cache):
    explicit, env, cached = fake_arrays(1), fake_arrays(2), fake_arrays(3)
    write_fake_mnist(tmp_path / "explicit", explicit)
    write_fake_mnist(tmp_path / "env", env, style="dotted")
    write_fake_mnist(cache, cached, gz=False)
    monkeypatch.setenv(env_var, str(tmp_path / "env"))
    # The other data set's variable and cache are not this one's.
    other = next(source for name, source in DATASETS.items() if name != dataset)
    monkeypatch.setenv(other.env_var, str(tmp_path / "explicit"))
    kwargs = {"dataset": dataset, "verify": False, "download": False}

    assert_same(load_mnist(tmp_path / "explicit", **kwargs), explicit)
    assert_same(load_mnist(**kwargs), env)
    monkeypatch.delenv(env_var)
    assert_same(load_mnist(**kwargs), cached)


def test_incomplete_env_dir_warns_and_falls_back_to_cache(tmp_path, monkeypatch, dataset,
                                                          env_var, cache):
    cached = fake_arrays(3)
    write_fake_mnist(cache, cached)
    (tmp_path / "env").mkdir()
    monkeypatch.setenv(env_var, str(tmp_path / "env"))
    with pytest.warns(
        UserWarning, match=rf"{env_var}=.*env: lacks .*falling back to the cache"
    ):
        loaded = load_mnist(dataset=dataset, verify=False, download=False)
    assert_same(loaded, cached)


def test_cache_dir_argument_overrides_default(tmp_path, dataset, cache):
    write_fake_mnist(cache, fake_arrays(1))
    mine = fake_arrays(2)
    write_fake_mnist(tmp_path / "mine", mine)
    loaded = load_mnist(dataset=dataset, cache_dir=tmp_path / "mine", verify=False,
                        download=False)
    assert_same(loaded, mine)


def test_default_cache_dir(tmp_path, monkeypatch, dataset):
    assert default_cache_dir() == tmp_path / "xdg" / "nnscratch" / "mnist"
    assert DATASETS[dataset].cache_dir() == tmp_path / "xdg" / "nnscratch" / dataset
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for value in ("", "relative/path"):  # the XDG spec says to ignore relative paths
        monkeypatch.setenv("XDG_CACHE_HOME", value)
        assert default_cache_dir(dataset) == tmp_path / "home" / ".cache" / "nnscratch" / dataset
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir(dataset) == tmp_path / "home" / ".cache" / "nnscratch" / dataset


def test_not_found_without_download_lists_places(tmp_path, monkeypatch, dataset, env_var,
                                                 cache):
    monkeypatch.setenv(env_var, str(tmp_path / "missing"))
    title = DATASETS[dataset].title
    with (
        pytest.warns(UserWarning),
        pytest.raises(MNISTNotFoundError, match=f"{title} not found and download=False") as info,
    ):
        load_mnist(dataset=dataset, download=False)
    message = str(info.value)
    assert f"{env_var}={tmp_path / 'missing'}: does not exist" in message
    assert f"cache {cache}: does not exist" in message
    assert "--data-dir" in message and f"set {env_var} to it" in message
    assert not cache.exists()


def test_unknown_dataset():
    with pytest.raises(ValueError, match=r"unknown dataset 'emnist'; choose one of 'mnist', "
                                         r"'fashion-mnist'"):
        load_mnist(dataset="emnist")


def test_mirrors_must_be_a_sequence():
    with pytest.raises(TypeError, match=r"mirrors=\(url,\)"):
        load_mnist(mirrors="http://127.0.0.1/")


def test_default_mirrors_and_file_table():
    assert MIRRORS == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    )
    assert [*MNIST_FILES, "files"] == list(MNIST._fields)
    assert MNIST_FILES["test_labels"].download_name == "t10k-labels-idx1-ubyte.gz"
    assert MNIST_FILES["train_images"].alt_name == "train-images.idx3-ubyte"
    with pytest.raises(TypeError):
        MNIST_FILES["x"] = MNIST_FILES["test_labels"]  # read-only
    assert DATASETS["mnist"].files is MNIST_FILES and DATASETS["mnist"].mirrors is MIRRORS


def test_fashion_mnist_source_is_the_publishers():
    # The digests of ../shared/README.md, the publisher's two mirrors, MNIST's file names.
    assert DATASETS["fashion-mnist"] is FASHION_MNIST
    assert FASHION_MNIST.mirrors == (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    )
    assert FASHION_MNIST.files["test_labels"].sha256 == (
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")
    assert [spec.name for spec in FASHION_MNIST.files.values()] == [
        spec.name for spec in MNIST_FILES.values()]
    assert FASHION_MNIST.env_var == "NNSCRATCH_DATA_FASHION"
    assert FASHION_MNIST.class_names[0] == "T-shirt/top"
    assert FASHION_MNIST.class_names[9] == "Ankle boot"


# --- downloading from a local server -----------------------------------------------------------


def _routes(prefix, bodies):
    return {f"{prefix}{MNIST_FILES[key].download_name}": body for key, body in bodies.items()}


def test_download_skips_bad_mirrors(monkeypatch, dataset, cache):
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)
    good = gzipped(arrays)
    routes = {
        **_routes("/corrupt/", {key: b"<html>oops</html>" for key in good}),
        **_routes("/other-data/", gzipped(fake_arrays(seed=9))),  # valid IDX, wrong SHA-256
        **_routes(
            "/truncated/", {key: truncated(body, len(body) // 2) for key, body in good.items()}
        ),
        **_routes("/good/", good),
    }
    with serve(routes) as server:
        prefixes = ["/missing/", "/corrupt/", "/other-data/", "/truncated/", "/good"]
        mirrors = [refused_url() + "/"] + [server.url + p for p in prefixes]
        loaded = load_mnist(dataset=dataset, mirrors=mirrors, progress=False)
    assert_same(loaded, arrays)
    assert _files_in(cache) == sorted(spec.download_name for spec in MNIST_FILES.values())
    for key, body in good.items():
        assert (cache / MNIST_FILES[key].download_name).read_bytes() == body
    first = MNIST_FILES["train_images"].download_name
    assert server.requests[:5] == [p.rstrip("/") + "/" + first for p in prefixes]
    assert all(path.startswith("/good/") for path in server.requests[5:])  # it remembers
    assert len(server.requests) == 5 + 3
    # The next call finds the cache and downloads nothing.
    assert_same(load_mnist(dataset=dataset, mirrors=[], progress=False), arrays)


def test_download_uses_the_data_sets_own_mirrors(monkeypatch, dataset, cache):
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)
    with serve(_routes("/own/", gzipped(arrays))) as server:
        source = DATASETS[dataset]
        monkeypatch.setitem(DATASETS, dataset, dataclasses.replace(
            source, mirrors=(refused_url() + "/", server.url + "/own/")))
        assert_same(load_mnist(dataset=dataset, progress=False), arrays)
    assert len(_files_in(cache)) == 4


def test_download_fetches_only_missing_files(monkeypatch, dataset, cache):
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)
    write_fake_mnist(cache, {k: arrays[k] for k in ("train_images", "test_labels")}, gz=False)
    with serve(_routes("/m/", gzipped(arrays))) as server:
        loaded = load_mnist(dataset=dataset, mirrors=[server.url + "/m/"], progress=False)
    assert_same(loaded, arrays)
    assert sorted(server.requests) == [
        "/m/t10k-images-idx3-ubyte.gz",
        "/m/train-labels-idx1-ubyte.gz",
    ]


def test_download_without_verify_accepts_other_datasets(tmp_path):
    arrays = fake_arrays(seed=5)  # stands in for e.g. Fashion-MNIST
    with serve(_routes("/", gzipped(arrays))) as server:
        loaded = load_mnist(
            mirrors=[server.url], verify=False, progress=False, cache_dir=tmp_path / "c"
        )
    assert_same(loaded, arrays)
    assert len(_files_in(tmp_path / "c")) == 4


def test_all_mirrors_bad(monkeypatch, dataset, env_var, cache):
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)
    refused = refused_url()
    good = gzipped(arrays)
    routes = {
        **_routes("/wrong/", gzipped(fake_arrays(seed=9))),
        **_routes("/html/", {key: b"<html>Access denied</html>" for key in good}),
        **_routes("/cut/", {key: truncated(body, 100) for key, body in good.items()}),
    }
    with serve(routes) as server:
        prefixes = ["/missing/", "/wrong/", "/html/", "/cut/"]
        mirrors = [refused + "/"] + [server.url + p for p in prefixes]
        with pytest.raises(MNISTNotFoundError) as info:
            load_mnist(dataset=dataset, mirrors=mirrors, progress=False)
    message = str(info.value)
    name = "train-images-idx3-ubyte.gz"
    assert f"{DATASETS[dataset].title} not found, and downloading {name} failed from every " \
           "mirror" in message
    assert f"{env_var}: not set" in message
    assert f"cache {cache}: does not exist" in message
    assert re.search(rf"{re.escape(refused)}/{name}: cannot connect \(.*refused", message)
    assert f"{server.url}/missing/{name}: HTTP 404" in message
    assert f"{server.url}/wrong/{name}: wrong content: SHA-256" in message
    assert f"{server.url}/html/{name}: not an IDX file" in message
    assert f"{server.url}/cut/{name}: the connection closed after 100 of" in message
    assert "--data-dir" in message and f"{env_var} to it" in message
    assert _files_in(cache) == []


def test_stalled_mirror_times_out(monkeypatch, dataset, cache):
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)
    monkeypatch.setattr(mnist_module, "_TIMEOUT", 0.1)

    def stall(handler):
        time.sleep(0.5)

    routes = {"/stalled/train-images-idx3-ubyte.gz": stall, **_routes("/good/", gzipped(arrays))}
    with serve(routes) as server:
        loaded = load_mnist(
            dataset=dataset, mirrors=[server.url + "/stalled/", server.url + "/good/"],
            progress=False,
        )
        with pytest.raises(MNISTNotFoundError, match=r"stalled/train-images.*timed out"):
            load_mnist(dataset=dataset, mirrors=[server.url + "/stalled/"], progress=False,
                       cache_dir=cache / "x")
    assert_same(loaded, arrays)


def test_no_mirrors(dataset, cache):
    with pytest.raises(MNISTNotFoundError, match="no mirrors were given"):
        load_mnist(dataset=dataset, mirrors=[], progress=False)
    assert _files_in(cache) == []


def test_keyboard_interrupt_during_download_leaves_nothing(monkeypatch, dataset, cache):
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays, dataset)

    class InterruptedBar:
        def __init__(self, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(mnist_module, "tqdm", InterruptedBar)
    with serve(_routes("/", gzipped(arrays))) as server, pytest.raises(KeyboardInterrupt):
        load_mnist(dataset=dataset, mirrors=[server.url])
    assert _files_in(cache) == []


def test_progress_bar_names_the_file(monkeypatch, capsys, tmp_path):
    arrays = fake_arrays()
    use_hashes_of(monkeypatch, arrays)
    with serve(_routes("/", gzipped(arrays))) as server:
        load_mnist(mirrors=[server.url], cache_dir=tmp_path / "c", progress=True)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


# --- the real MNIST ------------------------------------------------------------------------------

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.slow
def test_real_fashion_mnist(fashion_dir):
    fashion = load_mnist(fashion_dir, dataset="fashion-mnist", verify=True, download=False)
    arrays = fashion[:4]  # the fifth field is the files behind them
    assert [a.shape for a in arrays] == [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]
    assert all(a.dtype == np.uint8 for a in arrays)
    assert np.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert np.bincount(fashion.test_labels).tolist() == [1000] * 10


@pytest.mark.slow
def test_real_mnist(mnist_dir):
    mnist = load_mnist(mnist_dir, verify=True, download=False)
    shapes = [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]
    arrays = mnist[:4]  # the fifth field is the files behind them
    assert [a.shape for a in arrays] == shapes
    assert all(a.dtype == np.uint8 for a in arrays)
    assert np.bincount(mnist.train_labels).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.test_labels).tolist() == TEST_COUNTS
    assert mnist.train_images.max() == 255 and mnist.train_images.min() == 0
