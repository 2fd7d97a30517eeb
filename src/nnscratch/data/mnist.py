"""Find, download, verify and load MNIST.

:func:`load_mnist` looks for the four MNIST files in this order and loads the first complete set:

1. the ``data_dir`` argument (if given and incomplete, that is an error: it is what was asked for);
2. the directory named by the ``NNSCRATCH_DATA`` environment variable;
3. the user cache, ``$XDG_CACHE_HOME/nnscratch/mnist`` (default ``~/.cache/nnscratch/mnist``) or
   the ``cache_dir`` argument;
4. a download into that cache from the mirrors, tried in turn for each missing file.

Both common naming styles are recognised (``train-images-idx3-ubyte`` and
``train-images.idx3-ubyte``), gzipped or raw, decided by the bytes. Each file is read once: the
decompressed bytes are hashed with SHA-256 and parsed by :mod:`nnscratch.data.idx`. Hashing the
decompressed content means any correct copy passes, whatever tool gzipped it. A download streams
into a temporary file in the cache and is renamed into place only after it has been verified, so
the cache never holds a partial or unverified file, whatever goes wrong (``KeyboardInterrupt``
included).

What it leaves out: subsets and preprocessing (see :mod:`nnscratch.data.datasets`), other
datasets in MNIST's format beyond ``verify=False`` (Fashion-MNIST loads that way from a folder or
from ``mirrors``), proxies and authentication beyond what ``urllib`` picks up from the
environment, and resuming interrupted downloads (a file is 10 MB at most).
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
    "MIRRORS",
    "MNIST",
    "MNIST_FILES",
    "DataFile",
    "MNISTChecksumError",
    "MNISTFile",
    "MNISTNotFoundError",
    "default_cache_dir",
    "load_mnist",
]

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Default download locations, tried in order; each serves ``train-images-idx3-ubyte.gz`` etc."""

_ENV_VAR = "NNSCRATCH_DATA"
_TIMEOUT = 30.0  # seconds without progress before a mirror counts as failed
_CHUNK_SIZE = 1 << 16
_IMAGE_SHAPE = (28, 28)  # every MNIST-format data set (MNIST, Fashion-MNIST, KMNIST)
_HOW_TO_SKIP = (
    "If you deliberately use a different dataset in MNIST's format (e.g. Fashion-MNIST), "
    "pass verify=False (CLI: --no-verify)."
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


MNIST_FILES: Mapping[str, MNISTFile] = MappingProxyType(
    {
        "train_images": MNISTFile(
            "train-images-idx3-ubyte",
            "train-images.idx3-ubyte",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            3,
        ),
        "train_labels": MNISTFile(
            "train-labels-idx1-ubyte",
            "train-labels.idx1-ubyte",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            1,
        ),
        "test_images": MNISTFile(
            "t10k-images-idx3-ubyte",
            "t10k-images.idx3-ubyte",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            3,
        ),
        "test_labels": MNISTFile(
            "t10k-labels-idx1-ubyte",
            "t10k-labels.idx1-ubyte",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            1,
        ),
    }
)
"""The four files, keyed like the fields of :class:`MNIST`."""


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
    """The MNIST arrays, exactly as stored: uint8 pixels 0..255 and uint8 labels 0..9.

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
    """A file's decompressed content does not have the SHA-256 of the original MNIST file.

    Attributes
    ----------
    source : str
        The path or URL of the file.
    expected, actual : str
        The SHA-256 digests, in hex.
    """

    def __init__(self, source: str, name: str, expected: str, actual: str) -> None:
        self.source, self.expected, self.actual = source, expected, actual
        super().__init__(
            f"{source}: SHA-256 mismatch for MNIST {name}: expected {expected}, found {actual} "
            "(of the decompressed content). The file is corrupt or is not the original MNIST; "
            f"delete it and download it again. {_HOW_TO_SKIP}"
        )


class MNISTNotFoundError(FileNotFoundError):
    """MNIST is not where it was asked for, or could not be found or downloaded anywhere.

    The message lists every place looked (directories, and each mirror with why it failed) and
    how to provide the files.
    """


def default_cache_dir() -> Path:
    """Return the user cache for MNIST: ``$XDG_CACHE_HOME/nnscratch/mnist``.

    Returns
    -------
    path : Path
        ``$XDG_CACHE_HOME/nnscratch/mnist`` if that variable holds an absolute path (the XDG
        rule), else ``~/.cache/nnscratch/mnist``. The directory is not created.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "nnscratch" / "mnist"


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> MNIST:
    """Load MNIST from a folder, ``NNSCRATCH_DATA``, the cache, or a download.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        A folder holding the four files. If given, only this folder is used.
    download : bool, default=True
        Download missing files into the cache when no complete copy is found.
    verify : bool, default=True
        Check the SHA-256 of each file's decompressed content against :data:`MNIST_FILES`.
        With ``False`` any well-formed IDX files of the right kinds load (uint8 images of rank 3
        and labels of rank 1, as many labels as images), e.g. Fashion-MNIST.
    progress : bool, default=True
        Show a progress bar while downloading.
    mirrors : sequence of str, optional
        Base URLs tried in order for each file; defaults to :data:`MIRRORS`.
    cache_dir : str or os.PathLike, optional
        The cache folder; defaults to :func:`default_cache_dir`.

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
        If `verify` is True and a file's content differs from the original MNIST.
    IDXFormatError
        If a file is not well-formed IDX (truncated, corrupt gzip, ...).
    ValueError
        If the files are well-formed IDX but not of MNIST's kinds: images not uint8 of shape
        (n, 28, 28) — checked at load, naming the file, with or without `verify` — labels not
        uint8 of rank 1, or different numbers of images and labels.
    TypeError
        If `mirrors` is a single string rather than a sequence of them.

    Warns
    -----
    UserWarning
        If ``NNSCRATCH_DATA`` is set but its folder lacks files, before falling back to the cache.

    Notes
    -----
    A download writes ``<name>.gz`` into the cache only after its content has been verified
    (or, with ``verify=False``, parsed). Files downloaded before another file fails stay in the
    cache, complete and verified, so the next call fetches only what is missing. Give another
    dataset (downloaded with ``verify=False``) its own `cache_dir`, or the MNIST cache will hold
    it under MNIST's names.

    Examples
    --------
    >>> mnist = load_mnist(progress=False)  # doctest: +SKIP
    >>> mnist.train_images.shape, mnist.test_labels[:5]  # doctest: +SKIP
    ((60000, 28, 28), array([7, 2, 1, 0, 4], dtype=uint8))
    """
    if isinstance(mirrors, (str, bytes)):
        raise TypeError(
            f"mirrors must be a sequence of base URLs, got the single string {mirrors!r}; "
            "wrap it in a tuple: mirrors=(url,)."
        )
    mirrors = tuple(MIRRORS if mirrors is None else mirrors)

    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        found, missing = _find_files(directory)
        if missing:
            raise MNISTNotFoundError(
                f"data_dir {directory} {_describe_missing(directory, missing)}. Put the four "
                f"MNIST files there ({_file_list()}, gzipped or not), or pass no data_dir to use "
                f"${_ENV_VAR} or the cache at {default_cache_dir()} (downloaded if needed)."
            )
        return _load_files(found, {}, verify)

    looked: list[str] = []
    env_value = os.environ.get(_ENV_VAR, "")
    if env_value:
        directory = Path(env_value).expanduser()
        found, missing = _find_files(directory)
        if not missing:
            return _load_files(found, {}, verify)
        place = f"{_ENV_VAR}={env_value}: {_describe_missing(directory, missing)}"
        looked.append(place)
        warnings.warn(f"{place}; falling back to the cache.", UserWarning, stacklevel=2)
    else:
        looked.append(f"{_ENV_VAR}: not set")

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    found, missing = _find_files(cache)
    if not missing:
        return _load_files(found, {}, verify)
    looked.append(f"cache {cache}: {_describe_missing(cache, missing)}")

    if not download:
        raise MNISTNotFoundError(
            "MNIST not found and download=False. Looked in:\n"
            + _bullets(looked)
            + f"\n{_how_to_provide()} Or allow the download (download=True) into {cache}."
        )

    cache.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for key in missing:
        spec = MNIST_FILES[key]
        destination = cache / spec.download_name
        failures: list[str] = []
        for mirror in mirrors:
            url = mirror if mirror.endswith("/") else mirror + "/"
            url += spec.download_name
            try:
                arrays[key] = _download(url, destination, key, verify=verify, progress=progress)
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
                f"MNIST not found, and downloading {spec.download_name} failed from every "
                "mirror.\nLooked in:\n"
                + _bullets(looked)
                + f"\nTried:\n{tried}\n"
                + _how_to_provide()
            )
    return _load_files(found, arrays, verify)


def _find_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """Map each key to the first accepted file name present in `directory`; list the others."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, spec in MNIST_FILES.items():
        for name in spec.candidates:
            if (directory / name).is_file():
                found[key] = directory / name
                break
        else:
            missing.append(key)
    return found, missing


def _describe_missing(directory: Path, missing: list[str]) -> str:
    if not directory.exists():
        return "does not exist"
    if not directory.is_dir():
        return "is not a directory"
    names = ", ".join(f"{MNIST_FILES[key].name}[.gz]" for key in missing)
    return f"lacks {names}"


def _file_list() -> str:
    return ", ".join(spec.download_name for spec in MNIST_FILES.values())


def _how_to_provide() -> str:
    return (
        f"To fix: download the four files ({_file_list()}) from any MNIST mirror, put them in "
        f"one folder, and pass it as data_dir (CLI: --data-dir) or set {_ENV_VAR} to it."
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


def _download(url: str, destination: Path, key: str, *, verify: bool, progress: bool) -> np.ndarray:
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
        return _parse_checked(data, url, key, verify=verify)


def _parse_checked(data: bytes, source: str, key: str, *, verify: bool) -> np.ndarray:
    """Decompress once, parse and hash (if `verify`) the same bytes; check the array's kind."""
    spec = MNIST_FILES[key]
    raw = _decompress(data, source)
    array = _parse_uncompressed(raw, source)  # first, so a damaged file says what is wrong
    if verify:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != spec.sha256:
            raise MNISTChecksumError(source, spec.name, spec.sha256, actual)
    _check_kind(array, source, spec)
    return array


def _check_kind(array: np.ndarray, source: str, spec: MNISTFile) -> None:
    """Images must be uint8 ``(n, 28, 28)`` and labels uint8 ``(n,)``, whatever ``verify`` is."""
    if array.ndim != spec.rank or array.dtype != np.uint8:
        layout = "(n_images, rows, cols)" if spec.rank == 3 else "(n_images,)"
        raise ValueError(
            f"{source}: MNIST {spec.name} must hold uint8 of rank {spec.rank} {layout}, but it "
            f"holds {array.dtype} of shape {array.shape}. Check the file is the one its name "
            "says (images vs labels)."
        )
    if spec.rank == 3 and array.shape[1:] != _IMAGE_SHAPE:
        raise ValueError(
            f"{source}: MNIST {spec.name} must hold {_IMAGE_SHAPE[0]}×{_IMAGE_SHAPE[1]} images, "
            f"but it holds {array.shape[1]}×{array.shape[2]} ones (shape {array.shape}). Give "
            "a data set in MNIST's format (28×28 pixels), or resize its images to 28×28 first."
        )


def _load_files(paths: dict[str, Path], arrays: dict[str, np.ndarray], verify: bool) -> MNIST:
    """Read every file in `paths` not already in `arrays` and check images and labels pair up.

    Every file in `paths` is recorded with the SHA-256 of its bytes (downloaded ones are read
    back from the cache for that).
    """
    files = {}
    for key, path in paths.items():
        with open_regular_file(path, what="an MNIST file") as handle:
            data = handle.read()
        if key not in arrays:
            arrays[key] = _parse_checked(data, str(path), key, verify=verify)
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
