"""Bad files for the tests of refusals: tampered model files, lying zip and .npy headers, pipes.

Shared by test_serialization.py, test_images.py and test_cli.py. Every builder writes real
bytes to a real path, so the code under test reads them the way it reads a user's files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def rewrite(path: Path, change: Callable[[dict[str, np.ndarray], dict[str, Any]], None], *,
            rehash: bool = False) -> None:
    """Re-save a model file after ``change`` edits its arrays and metadata document (a
    careful tamperer: the zip itself stays well formed). With ``rehash`` the recorded SHA-256
    of each array is updated too, so only the deeper checks can catch the change."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    document = json.loads(arrays.pop("metadata").tobytes())
    change(arrays, document)
    if rehash:
        for entry in document["parameters"] + document.get("buffers", []):
            entry["sha256"] = hashlib.sha256(
                np.ascontiguousarray(arrays[entry["key"]]).tobytes()).hexdigest()
    arrays["metadata"] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def rewrite_metadata_text(path: Path, text: str) -> None:
    """Replace the metadata by ``text`` verbatim (invalid JSON, NaN, repeated keys...)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["metadata"] = np.frombuffer(text.encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def claim_size(path: Path, member: str, file_size: int) -> None:
    """Make the zip directory claim ``file_size`` uncompressed bytes for ``member``.

    The local header and the central directory both say so, as a crafted decompression
    bomb would; the member's stored bytes are unchanged.
    """
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(member)
    # Local file header: uncompressed size at offset 22. Central directory entry: offset 24.
    struct.pack_into("<I", data, info.header_offset + 22, file_size)
    name = member.encode()
    start = data.rfind(b"PK\x01\x02", 0, data.rfind(name))
    struct.pack_into("<I", data, start + 24, file_size)
    path.write_bytes(bytes(data))


def npy_with_header(path: Path, shape: tuple[int, ...], dtype: str, payload: bytes) -> None:
    """A .npy file whose header declares ``shape`` and ``dtype`` whatever ``payload`` holds."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
    path.write_bytes(buffer.getvalue() + payload)  # the header starts with the magic


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares ``width`` × ``height`` pixels but holds almost no data: what a
    decompression bomb looks like from its header."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every file's bytes (and every link's target) under ``folder``, to prove a refused
    command left everything exactly as it was."""
    found: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            relative = str(path.relative_to(folder))
            if path.is_symlink():
                found[relative] = "-> " + os.readlink(path)
            elif path.is_file():
                found[relative] = path.read_bytes()
            elif path.is_dir():
                found[relative] = "<dir>"
            else:
                found[relative] = "<special>"
    return found


def error_in_child(call: str, path: Path) -> str:
    """Run ``call`` (Python with ``path`` bound to a str) in a fresh interpreter with a
    timeout, and return ``"ErrorType: message"`` of what it raised (``"no error"`` if none).

    For named pipes: a reader that wrongly waited for a writer would hang the test run, so
    the attempt happens in a child that a timeout ends.
    """
    code = (f"import sys\npath = sys.argv[1]\ntry:\n    {call}\n    print('no error')\n"
            "except Exception as error:\n    print(f'{type(error).__name__}: {error}')\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
