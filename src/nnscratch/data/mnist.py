"""Find, download, verify and load MNIST and Fashion-MNIST, the data sets in MNIST's format.

Both data sets are four gzipped IDX files with the same names; what differs is described by a
:class:`DatasetSource` in :data:`DATASETS` (``"mnist"``, ``"fashion-mnist"``): the files'
SHA-256 digests, the mirrors, the environment variable and the class names. One mechanism
serves both. :func:`load_mnist` looks for the four files in this order and loads the first
complete set:

1. the ``data_dir`` argument (if given and incomplete, that is an error: it is what was asked for);
2. the directory named by the data set's environment variable: ``NNSCRATCH_DATA`` for MNIST,
   ``NNSCRATCH_DATA_FASHION`` for Fashion-MNIST;
3. the user cache, ``$XDG_CACHE_HOME/nnscratch/<name>`` (default ``~/.cache/nnscratch/mnist``
   and ``~/.cache/nnscratch/fashion-mnist``) or the ``cache_dir`` argument;
4. a download into that cache from the data set's mirrors, tried in turn for each missing file.

Both common naming styles are recognised (``train-images-idx3-ubyte`` and
``train-images.idx3-ubyte``), gzipped or raw, decided by the bytes. Each file is read once: the
decompressed bytes are hashed with SHA-256 and parsed by :mod:`nnscratch.data.idx`. Hashing the
decompressed content means any correct copy passes, whatever tool gzipped it. A download streams
into a temporary file in the cache and is renamed into place only after it has been verified, so
the cache never holds a partial or unverified file, whatever goes wrong (``KeyboardInterrupt``
included).

What it leaves out: subsets and preprocessing (see :mod:`nnscratch.data.datasets`), other
datasets in MNIST's format beyond ``verify=False`` (which loads any well-formed files from a
folder or from ``mirrors``), proxies and authentication beyond what ``urllib`` picks up from the
environment, and resuming interrupted downloads (a file is 30 MB at most).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from nnscratch._atomic import atomic_write
from nnscratch._files import open_regular_file
from nnscratch.data.idx import _decompress, _parse_uncompressed

__all__ = [
    "DATASETS",
    "FASHION_MNIST",
    "MIRRORS",
    "MNIST",
    "MNIST_FILES",
    "DataFile",
    "DatasetSource",
    "MNISTChecksumError",
    "MNISTFile",
    "MNISTNotFoundError",
    "default_cache_dir",
    "get_source",
    "load_mnist",
]

_TIMEOUT = 30.0  # seconds without progress before a mirror counts as failed
_CHUNK_SIZE = 1 << 16
_IMAGE_SHAPE = (28, 28)  # every MNIST-format data set (MNIST, Fashion-MNIST, KMNIST)
_HOW_TO_SKIP = (
    "If you deliberately use a different dataset in MNIST's format, pass verify=False "
    "(CLI: --no-verify)."
)


@dataclass(frozen=True)
class MNISTFile:
    """One of the four MNIST files: its names, its checksum and what it must hold.

    Attributes
    ----------
    name : str
        The canonical name without ``.gz``, e.g. ``"train-images-idx3-ubyte"``.
    alt_name : str
        The other common name, e.g. ``"train-images.idx3-ubyte"``.
    sha256 : str
        SHA-256 of the decompressed content, in hex.
    rank : {1, 3}
        3 for images ``(n_images, rows, cols)``, 1 for labels ``(n_images,)``.
    """

    name: str
    alt_name: str
    sha256: str
    rank: int

    @property
    def download_name(self) -> str:
        """The name on the mirrors and in the cache: `name` plus ``.gz``."""
        return self.name + ".gz"

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every file name accepted for this file, in the order they are looked for."""
        return (self.name, self.name + ".gz", self.alt_name, self.alt_name + ".gz")


def _file_table(sha256: Mapping[str, str]) -> Mapping[str, MNISTFile]:
    """The four files under their MNIST names, with the given SHA-256 digests."""
    names = {
        "train_images": ("train-images", 3),
        "train_labels": ("train-labels", 1),
        "test_images": ("t10k-images", 3),
        "test_labels": ("t10k-labels", 1),
    }
    return MappingProxyType({
        key: MNISTFile(f"{stem}-idx{rank}-ubyte", f"{stem}.idx{rank}-ubyte", sha256[key], rank)
        for key, (stem, rank) in names.items()
    })


@dataclass(frozen=True)
class DatasetSource:
    """A data set in MNIST's format: its files, where to find them and what its classes are.

    Attributes
    ----------
    name : str
        The key in :data:`DATASETS` and the name of its cache folder, e.g. ``"fashion-mnist"``.
    title : str
        The data set's own spelling, for messages: ``"Fashion-MNIST"``.
    files : mapping of str to MNISTFile
        The four files, keyed like the fields of :class:`MNIST`, with their SHA-256 digests.
    mirrors : tuple of str
        Base URLs tried in order, each serving the four ``<name>.gz`` files.
    env_var : str
        The environment variable that may name a folder holding the files.
    class_names : tuple of str
        ``class_names[k]`` names label ``k``.
    """

    name: str
    title: str
    files: Mapping[str, MNISTFile]
    mirrors: tuple[str, ...]
    env_var: str
    class_names: tuple[str, ...]

    def cache_dir(self) -> Path:
        """``$XDG_CACHE_HOME/nnscratch/<name>`` (see :func:`default_cache_dir`)."""
        return default_cache_dir(self.name)


MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""MNIST's download locations, tried in order; each serves ``train-images-idx3-ubyte.gz`` etc."""

MNIST_FILES: Mapping[str, MNISTFile] = _file_table({
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
})
"""MNIST's four files, keyed like the fields of :class:`MNIST`."""

FASHION_MNIST = DatasetSource(
    name="fashion-mnist",
    title="Fashion-MNIST",
    files=_file_table({
        "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }),
    # The publisher's own mirror, then the data folder of its repository.
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    env_var="NNSCRATCH_DATA_FASHION",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
)
"""Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, Zalando Research, MIT licence)."""

DATASETS: dict[str, DatasetSource] = {
    "mnist": DatasetSource(
        name="mnist", title="MNIST", files=MNIST_FILES, mirrors=MIRRORS,
        env_var="NNSCRATCH_DATA", class_names=tuple(str(digit) for digit in range(10)),
    ),
    "fashion-mnist": FASHION_MNIST,
}
"""The data sets :func:`load_mnist` knows, by name."""


def get_source(dataset: str) -> DatasetSource:
    """The :class:`DatasetSource` called `dataset`, or ``ValueError`` listing the known ones."""
    try:
        return DATASETS[dataset]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown dataset {dataset!r}; choose one of {', '.join(map(repr, DATASETS))}."
        ) from None


class DataFile(NamedTuple):
    """Where one data file was read from, and the SHA-256 of its bytes as stored there.

    Attributes
    ----------
    path : str
        The file read (for a download, the verified copy in the cache).
    sha256 : str
        SHA-256 (hex) of the file's bytes as stored, gzipped or not: it names the exact file a
        run used. (:data:`MNIST_FILES` holds the SHA-256 of the decompressed content instead,
        the same for every correct copy.)
    """

    path: str
    sha256: str


class MNIST(NamedTuple):
    """The four arrays of MNIST (or Fashion-MNIST), as stored: uint8 pixels 0..255, uint8 labels.

    Attributes
    ----------
    train_images : ndarray of shape (60000, 28, 28)
    train_labels : ndarray of shape (60000,)
    test_images : ndarray of shape (10000, 28, 28)
    test_labels : ndarray of shape (10000,)
    files : mapping of str to DataFile
        The file behind each array, keyed like the arrays.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    files: Mapping[str, DataFile] = MappingProxyType({})


class MNISTChecksumError(ValueError):
    """A file's decompressed content does not have the SHA-256 of the original file.

    Attributes
    ----------
    source : str
        The path or URL of the file.
    expected, actual : str
        The SHA-256 digests, in hex.
    """

    def __init__(self, source: str, name: str, expected: str, actual: str,
                 title: str = "MNIST") -> None:
        self.source, self.expected, self.actual = source, expected, actual
        mismatch = (f"{source}: SHA-256 mismatch for {title} {name}: expected {expected}, "
                    f"found {actual} (of the decompressed content).")
        other = _known_file(actual)
        if other is not None and other[0].title == title:  # this data set's other split
            file_name = other[1]
            this, wanted = (("test-set", "training-set") if file_name.startswith("t10k")
                            else ("training-set", "test-set"))
            advice = (f"It is {title}'s {file_name}: this is the {this} file; the {wanted} "
                      f"file {name} is missing. Put {title}'s {name} here (were the train "
                      "and test files swapped?).")
        elif other is not None:
            dataset, file_name = other
            advice = (f"It is {dataset.title}'s {file_name}, not {title}'s: load it as "
                      f"dataset={dataset.name!r} (CLI: --dataset {dataset.name}), or put "
                      f"{title}'s files here.")
        else:
            advice = (f"The file is corrupt or is not the original {title}; delete it and "
                      f"download it again. {_HOW_TO_SKIP}")
        super().__init__(f"{mismatch} {advice}")


def _known_file(sha256: str) -> tuple[DatasetSource, str] | None:
    """The data set and file name whose content has this digest, if any."""
    for dataset in DATASETS.values():
        for spec in dataset.files.values():
            if spec.sha256 == sha256:
                return dataset, spec.name
    return None


class MNISTNotFoundError(FileNotFoundError):
    """A data set is not where it was asked for, or could not be found or downloaded anywhere.

    The message lists every place looked (directories, and each mirror with why it failed) and
    how to provide the files.
    """


def default_cache_dir(dataset: str = "mnist") -> Path:
    """Return the user cache of a data set: ``$XDG_CACHE_HOME/nnscratch/<dataset>``.

    Parameters
    ----------
    dataset : str, default="mnist"
        The folder's name, e.g. ``"fashion-mnist"``.

    Returns
    -------
    path : Path
        ``$XDG_CACHE_HOME/nnscratch/<dataset>`` if that variable holds an absolute path (the
        XDG rule), else ``~/.cache/nnscratch/<dataset>``. The directory is not created.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "nnscratch" / dataset


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    dataset: str = "mnist",
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> MNIST:
    """Load MNIST (or Fashion-MNIST) from a folder, the environment, the cache, or a download.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        A folder holding the four files. If given, only this folder is used.
    dataset : {"mnist", "fashion-mnist"}, default="mnist"
        Which data set of :data:`DATASETS`: its checksums, environment variable
        (``NNSCRATCH_DATA``, ``NNSCRATCH_DATA_FASHION``), cache folder and mirrors.
    download : bool, default=True
        Download missing files into the cache when no complete copy is found.
    verify : bool, default=True
        Check the SHA-256 of each file's decompressed content against the data set's files
        (:data:`MNIST_FILES` for MNIST). With ``False`` any well-formed IDX files of the right
        kinds load (uint8 images of rank 3 and labels of rank 1, as many labels as images).
    progress : bool, default=True
        Show a progress bar while downloading.
    mirrors : sequence of str, optional
        Base URLs tried in order for each file; defaults to the data set's (:data:`MIRRORS`
        for MNIST).
    cache_dir : str or os.PathLike, optional
        The cache folder; defaults to :func:`default_cache_dir` of the data set.

    Returns
    -------
    mnist : MNIST
        ``(train_images, train_labels, test_images, test_labels)`` as uint8 arrays.

    Raises
    ------
    MNISTNotFoundError
        If `data_dir` is given and lacks a file (the message names the folder and the missing
        files); or no complete copy exists and `download` is False or every mirror failed for
        some file (the message lists every place looked and why each mirror failed).
    MNISTChecksumError
        If `verify` is True and a file's content differs from the original data set's.
    IDXFormatError
        If a file is not well-formed IDX (truncated, corrupt gzip, ...).
    ValueError
        If `dataset` is unknown, or the files are well-formed IDX but not of MNIST's kinds:
        images not uint8 of shape (n, 28, 28) — checked at load, naming the file, with or
        without `verify` — labels not uint8 of rank 1, or different numbers of images and
        labels.
    TypeError
        If `mirrors` is a single string rather than a sequence of them.

    Warns
    -----
    UserWarning
        If the data set's environment variable is set but its folder lacks files, before
        falling back to the cache.

    Notes
    -----
    A download writes ``<name>.gz`` into the cache only after its content has been verified
    (or, with ``verify=False``, parsed). Files downloaded before another file fails stay in the
    cache, complete and verified, so the next call fetches only what is missing. Give another
    dataset (downloaded with ``verify=False``) its own `cache_dir`, or the cache will hold it
    under MNIST's names.

    Examples
    --------
    >>> mnist = load_mnist(progress=False)  # doctest: +SKIP
    >>> mnist.train_images.shape, mnist.test_labels[:5]  # doctest: +SKIP
    ((60000, 28, 28), array([7, 2, 1, 0, 4], dtype=uint8))
    >>> load_mnist(dataset="fashion-mnist", progress=False).test_labels[:3]  # doctest: +SKIP
    array([9, 2, 1], dtype=uint8)
    """
    source = get_source(dataset)
    if isinstance(mirrors, (str, bytes)):
        raise TypeError(
            f"mirrors must be a sequence of base URLs, got the single string {mirrors!r}; "
            "wrap it in a tuple: mirrors=(url,)."
        )
    mirrors = tuple(source.mirrors if mirrors is None else mirrors)
    default_cache = source.cache_dir()

    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        found, missing = _find_files(source, directory)
        if missing:
            raise MNISTNotFoundError(
                f"data_dir {directory} {_describe_missing(source, directory, missing)}. Put the "
                f"four {source.title} files there ({_file_list(source)}, gzipped or not), or "
                f"pass no data_dir to use ${source.env_var} or the cache at {default_cache} "
                "(downloaded if needed)."
            )
        return _load_files(source, found, {}, verify)

    looked: list[str] = []
    env_value = os.environ.get(source.env_var, "")
    if env_value:
        directory = Path(env_value).expanduser()
        found, missing = _find_files(source, directory)
        if not missing:
            return _load_files(source, found, {}, verify)
        place = (f"{source.env_var}={env_value}: "
                 f"{_describe_missing(source, directory, missing)}")
        looked.append(place)
        warnings.warn(f"{place}; falling back to the cache.", UserWarning, stacklevel=2)
    else:
        looked.append(f"{source.env_var}: not set")

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache
    found, missing = _find_files(source, cache)
    if not missing:
        return _load_files(source, found, {}, verify)
    looked.append(f"cache {cache}: {_describe_missing(source, cache, missing)}")

    if not download:
        raise MNISTNotFoundError(
            f"{source.title} not found and download=False. Looked in:\n"
            + _bullets(looked)
            + f"\n{_how_to_provide(source)} Or allow the download (download=True) into {cache}."
        )

    cache.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for key in missing:
        spec = source.files[key]
        destination = cache / spec.download_name
        failures: list[str] = []
        for mirror in mirrors:
            url = mirror if mirror.endswith("/") else mirror + "/"
            url += spec.download_name
            try:
                arrays[key] = _download(source, url, destination, key, verify=verify,
                                        progress=progress)
            except (OSError, ValueError, http.client.HTTPException) as error:
                failures.append(f"{url}: {_reason(error, url)}")
                continue
            found[key] = destination
            # Try the mirror that worked first for the remaining files.
            mirrors = (mirror, *(m for m in mirrors if m != mirror))
            break
        else:
            tried = _bullets(failures) if failures else "  - no mirrors were given"
            raise MNISTNotFoundError(
                f"{source.title} not found, and downloading {spec.download_name} failed from "
                "every mirror.\nLooked in:\n"
                + _bullets(looked)
                + f"\nTried:\n{tried}\n"
                + _how_to_provide(source)
            )
    return _load_files(source, found, arrays, verify)


def _find_files(source: DatasetSource, directory: Path) -> tuple[dict[str, Path], list[str]]:
    """Map each key to the first accepted file name present in `directory`; list the others.

    Where several accepted names are present (``X`` and ``X.gz``), the first is used only if
    they all hold the same decompressed content, whatever ``verify`` is, and a warning says
    which; otherwise the choice would be silent and arbitrary, so it is refused.
    """
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, spec in source.files.items():
        present = [directory / name for name in spec.candidates if (directory / name).is_file()]
        if not present:
            missing.append(key)
            continue
        found[key] = present[0]
        if len(present) > 1:
            _check_same_content(source, present)
    return found, missing


def _check_same_content(source: DatasetSource, paths: list[Path]) -> None:
    """Several files for one of the four: the same content (used: the first), or an error."""
    digests = []
    for path in paths:
        with open_regular_file(path, what=f"a {source.title} file") as handle:
            digests.append(hashlib.sha256(_decompress(handle.read(), str(path))).hexdigest())
    names = " and ".join(path.name for path in paths)
    if len(set(digests)) == 1:
        warnings.warn(f"{paths[0].parent} holds {names} with the same content; using "
                      f"{paths[0].name}.", UserWarning, stacklevel=4)
        return
    described = []
    for path, digest in zip(paths, digests, strict=True):
        known = _known_file(digest)
        described.append(f"{path.name} is {known[0].title}'s {known[1]}" if known
                         else f"{path.name} is no file of a known data set")
    raise ValueError(
        f"{paths[0].parent} holds {names} with different contents ({'; '.join(described)}), "
        f"so which one to load is unclear; keep only {source.title}'s file and remove the "
        "other(s)."
    )


def _describe_missing(source: DatasetSource, directory: Path, missing: list[str]) -> str:
    if not directory.exists():
        return "does not exist"
    if not directory.is_dir():
        return "is not a directory"
    names = ", ".join(f"{source.files[key].name}[.gz]" for key in missing)
    return f"lacks {names}"


def _file_list(source: DatasetSource) -> str:
    return ", ".join(spec.download_name for spec in source.files.values())


def _how_to_provide(source: DatasetSource) -> str:
    return (
        f"To fix: download the four files ({_file_list(source)}) from any {source.title} "
        "mirror, put them in one folder, and pass it as data_dir (CLI: --data-dir) or set "
        f"{source.env_var} to it."
    )


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"  - {line}" for line in lines)


def _reason(error: BaseException, url: str) -> str:
    """Say in a few words why `url` failed."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot connect ({error.reason})"
    if isinstance(error, MNISTChecksumError):
        return f"wrong content: SHA-256 {error.actual}, expected {error.expected}"
    if isinstance(error, TimeoutError):
        return f"no data for {_TIMEOUT:g} s (timed out)"
    if isinstance(error, ValueError):  # our own messages, e.g. IDXFormatError, already explain
        return str(error).removeprefix(f"{url}: ")
    return f"{type(error).__name__}: {error}"


def _download(source: DatasetSource, url: str, destination: Path, key: str, *, verify: bool,
              progress: bool) -> np.ndarray:
    """Fetch `url` into `destination` via a temporary file, returning the parsed array.

    The temporary file replaces `destination` only once the download is complete and its
    content has passed :func:`_parse_checked`; on any exception it is removed.
    """
    with (
        urllib.request.urlopen(url, timeout=_TIMEOUT) as response,
        atomic_write(destination) as file,
    ):
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        data = bytearray()
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=destination.name,
            disable=not progress,
        ) as bar:
            while chunk := response.read(_CHUNK_SIZE):
                file.write(chunk)
                data += chunk
                bar.update(len(chunk))
        if total is not None and len(data) != total:
            raise ValueError(f"the connection closed after {len(data)} of {total} bytes")
        return _parse_checked(source, data, url, key, verify=verify)


def _parse_checked(source: DatasetSource, data: bytes, where: str, key: str, *,
                   verify: bool) -> np.ndarray:
    """Decompress once, parse and hash (if `verify`) the same bytes; check the array's kind."""
    spec = source.files[key]
    raw = _decompress(data, where)
    array = _parse_uncompressed(raw, where)  # first, so a damaged file says what is wrong
    if verify:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != spec.sha256:
            raise MNISTChecksumError(where, spec.name, spec.sha256, actual, source.title)
    _check_kind(array, where, spec, source.title)
    return array


def _check_kind(array: np.ndarray, where: str, spec: MNISTFile, title: str) -> None:
    """Images must be uint8 ``(n, 28, 28)`` and labels uint8 ``(n,)``, whatever ``verify`` is."""
    if array.ndim != spec.rank or array.dtype != np.uint8:
        layout = "(n_images, rows, cols)" if spec.rank == 3 else "(n_images,)"
        raise ValueError(
            f"{where}: {title} {spec.name} must hold uint8 of rank {spec.rank} {layout}, "
            f"but it holds {array.dtype} of shape {array.shape}. Check the file is the one its "
            "name says (images vs labels)."
        )
    if spec.rank == 3 and array.shape[1:] != _IMAGE_SHAPE:
        raise ValueError(
            f"{where}: {title} {spec.name} must hold {_IMAGE_SHAPE[0]}×{_IMAGE_SHAPE[1]} images, "
            f"but it holds {array.shape[1]}×{array.shape[2]} ones (shape {array.shape}). Give "
            "a data set in MNIST's format (28×28 pixels), or resize its images to 28×28 first."
        )


def _load_files(source: DatasetSource, paths: dict[str, Path], arrays: dict[str, np.ndarray],
                verify: bool) -> MNIST:
    """Read every file in `paths` not already in `arrays` and check images and labels pair up.

    Every file in `paths` is recorded with the SHA-256 of its bytes (downloaded ones are read
    back from the cache for that).
    """
    files = {}
    for key, path in paths.items():
        with open_regular_file(path, what=f"a {source.title} file") as handle:
            data = handle.read()
        if key not in arrays:
            arrays[key] = _parse_checked(source, data, str(path), key, verify=verify)
        files[key] = DataFile(str(path), hashlib.sha256(data).hexdigest())
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise ValueError(
                f"{paths[f'{split}_images']} holds {len(images)} images but "
                f"{paths[f'{split}_labels']} holds {len(labels)} labels; both files must come "
                "from the same dataset and split."
            )
        _check_labels(labels, paths[f"{split}_labels"])
    return MNIST(**{key: arrays[key] for key in MNIST_FILES}, files=MappingProxyType(files))


#: The classes of the data set: MNIST's digits 0..9.
N_CLASSES = 10


def _check_labels(labels: np.ndarray, path: Path) -> None:
    """Every label must be one of the data set's classes, with or without ``verify``: a label
    outside them would be dropped silently by every selection of classes."""
    outside = np.flatnonzero(labels >= N_CLASSES)
    if outside.size:
        values = np.unique(labels[outside])
        raise ValueError(
            f"{path}: {outside.size} label(s) are not classes of the data set (0..{N_CLASSES - 1})"
            f": {', '.join(map(str, values[:10].tolist()))}{' ...' if values.size > 10 else ''} "
            f"(first at index {outside[0]}). The file is damaged or from another data set; "
            "download it again or drop --no-verify to check it."
        )
