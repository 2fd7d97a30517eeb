"""IDX reader and writer: round trips, every kind of corruption, and arbitrary bytes."""

from __future__ import annotations

import gzip
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch.data.idx import IDXFormatError, parse_idx, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = [(), (5,), (3, 4), (2, 3, 4), (2, 1, 3, 2)]


def _random_array(rng, dtype, shape):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def _header(code, shape):
    return bytes([0, 0, code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"rank{len(s)}")
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip(tmp_path, rng, dtype, shape, name):
    array = _random_array(rng, dtype, shape)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array, strict=True)
    assert back.flags.writeable and back.flags.c_contiguous


def test_name_decides_compression_by_default(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "a", array)
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "a").read_bytes() == _header(0x08, (10,)) + array.tobytes()


def test_gzip_decided_by_bytes_not_name(tmp_path):
    array = np.arange(12, dtype=np.int16).reshape(3, 4)
    write_idx(tmp_path / "gzipped-without-suffix", array, compress=True)
    write_idx(tmp_path / "raw-with-suffix.gz", array, compress=False)
    assert (tmp_path / "gzipped-without-suffix").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "raw-with-suffix.gz").read_bytes()[:2] == b"\x00\x00"
    np.testing.assert_array_equal(read_idx(tmp_path / "gzipped-without-suffix"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw-with-suffix.gz"), array)


def test_on_disk_layout_is_big_endian(tmp_path):
    write_idx(tmp_path / "f", np.array([[1.5, -2.0]], dtype=np.float32))
    expected = _header(0x0D, (1, 2)) + np.array([1.5, -2.0], dtype=">f4").tobytes()
    assert (tmp_path / "f").read_bytes() == expected


def test_big_endian_input_is_accepted(tmp_path):
    array = np.array([1, -2, 300], dtype=">i4")
    write_idx(tmp_path / "f", array)
    back = read_idx(tmp_path / "f")
    assert back.dtype == np.dtype(np.int32)
    np.testing.assert_array_equal(back, array)


def test_gzip_output_is_reproducible(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_empty_dimension(tmp_path):
    write_idx(tmp_path / "f", np.zeros((0, 28, 28), dtype=np.uint8))
    assert read_idx(tmp_path / "f").shape == (0, 28, 28)


def test_concatenated_gzip_members(tmp_path):
    raw = _header(0x08, (4,)) + bytes([1, 2, 3, 4])
    (tmp_path / "f").write_bytes(gzip.compress(raw[:6]) + gzip.compress(raw[6:]))
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), [1, 2, 3, 4])


def test_parse_idx_bytes():
    array = parse_idx(_header(0x0C, (2,)) + np.array([7, -1], dtype=">i4").tobytes())
    np.testing.assert_array_equal(array, np.array([7, -1], dtype=np.int32), strict=True)


# --- writing errors --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.float16, np.bool_, np.complex64])
def test_write_rejects_unsupported_dtype(tmp_path, dtype):
    match = r"cannot store dtype .*uint8, int8, int16, int32, float32, float64"
    with pytest.raises(TypeError, match=match):
        write_idx(tmp_path / "f", np.zeros(3, dtype=dtype))
    assert os.listdir(tmp_path) == []


def test_write_rejects_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="cannot store dtype object"):
        write_idx(tmp_path / "f", np.array(["a", 1], dtype=object))


def test_interrupted_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "labels.gz"
    write_idx(path, np.arange(5, dtype=np.uint8))
    before = path.read_bytes()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gzip.GzipFile, "write", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_idx(path, np.arange(10, dtype=np.uint8))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["labels.gz"]


# --- reading errors: each names the file and the problem ------------------------------------

GOOD = _header(0x08, (2, 3)) + bytes(range(6))
CORRUPTIONS = {
    "empty": (b"", r"is empty"),
    "short header": (b"\x00\x00\x08", r"has only 3 bytes.*at least 4"),
    "truncated dims": (GOOD[:9], r"header is truncated: rank 2 needs 12 header bytes"),
    "wrong magic": (b"\x01\x00" + GOOD[2:], r"not an IDX file: it starts with bytes 0x01 0x00"),
    "html": (b"<html>404</html>", r"not an IDX file"),
    "unknown type": (GOOD[:2] + b"\x0a" + GOOD[3:], r"unknown IDX type code 0x0A"),
    "truncated payload": (
        GOOD[:-1],
        r"size mismatch: expected 6 payload bytes from dims 2×3 × 1 bytes per uint8, found 5.*"
        r"truncated",
    ),
    "extra bytes": (GOOD + b"\x00", r"expected 6 payload bytes .* found 7.*extra bytes"),
    # Byte 10 opens the deflate data: 0x07 is a final block of the reserved type 3.
    "corrupt gzip": (
        gzip.compress(GOOD)[:10] + b"\x07" + gzip.compress(GOOD)[11:],
        r"gzip stream is corrupt",
    ),
    "unknown gzip method": (b"\x1f\x8b\x09" + bytes(20), r"gzip stream is corrupt"),
    "bad gzip crc": (gzip.compress(GOOD)[:-8] + b"\x00" * 8, r"gzip stream is corrupt"),
    "truncated gzip": (gzip.compress(GOOD)[:-5], r"gzip stream ends early.*truncated"),
    "gzip magic only": (b"\x1f\x8b", r"gzip stream ends early"),
    "gzip of garbage": (gzip.compress(b"garbage!"), r"not an IDX file"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_read_corrupt_file_names_file_and_problem(tmp_path, case):
    data, problem = CORRUPTIONS[case]
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(IDXFormatError, match=re.escape(str(path)) + ".*" + problem):
        read_idx(path)


def test_errors_suggest_a_fix():
    with pytest.raises(IDXFormatError, match="download the file again"):
        parse_idx(GOOD[:-1], source="x")


def test_error_is_a_value_error():
    assert issubclass(IDXFormatError, ValueError)


def test_parse_idx_names_source():
    with pytest.raises(IDXFormatError, match=r"^https://example\.org/f\.gz: is empty"):
        parse_idx(b"", source="https://example.org/f.gz")


def test_rank_beyond_numpy_limit():
    data = _header(0x08, (1,) * 70) + b"\x07"
    with pytest.raises(IDXFormatError, match=r"rank 70 .* NumPy cannot create"):
        parse_idx(data)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# --- arbitrary bytes: an array or IDXFormatError, nothing else --------------------------------


def _parse_or_format_error(data: bytes) -> None:
    try:
        array = parse_idx(data)
    except IDXFormatError:
        return
    assert isinstance(array, np.ndarray)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes(data):
    _parse_or_format_error(data)


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
    shape=st.lists(st.integers(0, 4) | st.just(2**32 - 1), max_size=5),
    payload=st.binary(max_size=80),
)
def test_plausible_headers(code, shape, payload):
    _parse_or_format_error(_header(code, shape) + payload)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=40), cut=st.integers(0, 60), flip=st.integers(0, 60))
def test_damaged_gzip(data, cut, flip):
    stream = bytearray(gzip.compress(data))
    if flip < len(stream):
        stream[flip] ^= 0xFF
    _parse_or_format_error(bytes(stream[: len(stream) - cut % len(stream)]))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_gzip_magic_then_anything(data):
    _parse_or_format_error(b"\x1f\x8b" + data)


# --- sizes are checked before memory is spent on them ---------------------------------------


def _peak_bytes(action) -> int:
    """Peak memory traced while ``action`` runs (NumPy reports its arrays to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _raises_idx_error(data: bytes, match: str, **limits) -> None:
    with pytest.raises(IDXFormatError, match=match):
        parse_idx(data, source="bomb.gz", **limits)


def test_a_gzip_bomb_is_refused_before_it_is_decompressed():
    # 10 MB of zeros gzip to about 10 kB; the header declares all of them, truthfully.
    bomb = gzip.compress(_header(0x08, (10_000, 1000)) + bytes(10_000_000), mtime=0)
    assert len(bomb) < 20_000
    peak = _peak_bytes(lambda: _raises_idx_error(
        bomb, r"^bomb\.gz: the header declares 10000×1000 = 10,000,000 elements, more than the "
              r"limit of 1,000,000.*max_elements=N", max_elements=1_000_000))
    assert peak < 1_000_000  # the header was read, not the 10 MB
    assert parse_idx(bomb, max_elements=10_000_000).shape == (10_000, 1000)


def test_a_header_declaring_more_than_gzip_can_expand_to_is_refused():
    lie = gzip.compress(_header(0x0E, (1000, 1000, 100)) + bytes(64), mtime=0)
    peak = _peak_bytes(lambda: _raises_idx_error(
        lie, r"declares 1000×1000×100 of float64 \(800,000,016 bytes\), but \d+ gzipped bytes "
             r"can expand to at most [\d,]+; the file is damaged \(or a decompression bomb\)"))
    assert peak < 1_000_000


def test_the_default_limit():
    from nnscratch.data.idx import MAX_ELEMENTS

    assert MAX_ELEMENTS == 2**30
    _raises_idx_error(_header(0x08, (2**16, 2**15)),
                      r"2147483648 elements|2,147,483,648 elements, more than the limit of "
                      r"1,073,741,824")


def test_gzip_decompresses_no_further_than_the_header_declares():
    stream = gzip.compress(_header(0x08, (3,)) + bytes(3) + bytes(5_000_000), mtime=0)
    peak = _peak_bytes(lambda: _raises_idx_error(
        stream, r"holds more than the 11 bytes its IDX header declares.*extra bytes"))
    assert peak < 1_000_000


def test_a_raw_file_is_checked_against_its_size_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(_header(0x08, (60_000, 28, 28)) + bytes(100))
    with pytest.raises(IDXFormatError, match=r"expected 47040000 payload bytes .* found 100.*"
                                             r"truncated"):
        read_idx(path)
    path.write_bytes(_header(0x08, (2**32 - 1, 2**32 - 1)) + bytes(100))
    with pytest.raises(IDXFormatError, match=r"more than the limit of 1,073,741,824"):
        read_idx(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_named_pipe_is_refused(tmp_path):
    from _tamper import error_in_child

    os.mkfifo(tmp_path / "pipe")
    refusal = error_in_child("__import__('nnscratch.data').data.read_idx(path)",
                             tmp_path / "pipe")
    assert refusal.startswith(f"NotRegularFileError: {tmp_path / 'pipe'} is a named pipe "
                              "(FIFO), not an IDX file")
