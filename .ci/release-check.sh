#!/usr/bin/env bash
# A release as a package index would get it (issue 21): `python -m build` makes the sdist and,
# from the sdist (so a file missing from the sdist fails here), the wheel; `twine check` reads
# their metadata; then the wheel goes into a fresh venv, outside the source tree, that takes
# its dependencies from the package index — so the wheel's own metadata is what is proved:
#   1. the core install (no extra) has no web, tuning or ONNX package, runs `nnscratch train
#      --help` and `nnscratch export --help`, and `nnscratch serve` says which extra it needs;
#   2. with [serve,onnx] it serves its page (the static files come from the wheel) and exports.
# Run from anywhere, in a venv that has `build` and `twine` (the test extra has them).
set -euo pipefail
cd "$(dirname "$0")/.."
source_tree="$PWD"

work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2> /dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

python -m build --outdir "$work/dist" . > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
twine check --strict "$work"/dist/*
wheel="$(ls "$work"/dist/nnscratch-*.whl)"
ls "$work"/dist/nnscratch-*.tar.gz > /dev/null

unset PYTHONPATH  # the fresh venv sees its own site-packages only
python3 -m venv "$work/venv"
bin="$work/venv/bin"
cd "$work"  # nothing of the source tree is importable from here
"$bin/pip" install -q "$wheel"

# 1. The core install.
"$bin/python" - << 'EOF'
import importlib.metadata as metadata
optional = {"fastapi", "fastapi-offline", "starlette", "uvicorn", "httptools", "uvloop",
            "optuna", "sqlalchemy", "alembic", "psycopg", "onnx", "onnxruntime"}
installed = {d.metadata["Name"].lower().replace("_", "-") for d in metadata.distributions()}
unwanted = sorted(installed & optional)
assert not unwanted, f"the core install pulled in {unwanted}"
import nnscratch
assert "site-packages" in nnscratch.__file__, nnscratch.__file__
print(f"core install: {len(installed)} distributions, none of {sorted(optional)}")
EOF
"$bin/nnscratch" train --help > /dev/null
"$bin/nnscratch" export --help > /dev/null
"$bin/python" -c "
from nnscratch import build_mlp, save_model
save_model('model.npz', build_mlp(784, [16], 10, rng=0), list(range(10)),
           metadata={'preprocessing': {'flatten': [28, 28], 'scale': 'pixel / 255',
                                       'dtype': 'float32'}})"
if "$bin/nnscratch" serve model.npz 2> serve-missing.err; then
    echo "nnscratch serve ran without its extra" >&2; exit 1
fi
grep -qx 'nnscratch: error: nnscratch serve needs fastapi, which is not installed: pip install "nnscratch\[serve\]"' serve-missing.err \
    || { echo "unexpected message:" >&2; cat serve-missing.err >&2; exit 1; }

# 2. With the extras: the page and the export.
"$bin/pip" install -q "$wheel[serve,onnx]"
"$bin/nnscratch" export model.npz --out model.onnx
"$bin/python" -c "import onnx; onnx.checker.check_model(onnx.load('model.onnx'), full_check=True)"
"$bin/nnscratch" serve model.npz --port 0 > serve.out 2> serve.err &
server=$!
for _ in $(seq 120); do
    grep -q '^Serving on http://' serve.out && break
    kill -0 "$server" 2> /dev/null || { cat serve.err >&2; exit 1; }
    sleep 0.5
done
url="$(grep -m1 -o 'http://[^ ]*' serve.out)"
"$bin/python" - "$url" "$source_tree/src/nnscratch/serve/static" << 'EOF'
import sys
import urllib.request
from pathlib import Path

url, static = sys.argv[1], Path(sys.argv[2])
with urllib.request.urlopen(url + "/", timeout=30) as response:
    assert response.status == 200, response.status
    page = response.read().decode("utf-8")
assert "<title>nnscratch: draw a digit</title>" in page, page[:300]
for name in ("pad.js", "style.css"):
    with urllib.request.urlopen(f"{url}/static/{name}", timeout=30) as response:
        assert response.status == 200, response.status
        assert response.read() == (static / name).read_bytes(), f"{name} differs from the tree"
print(f"served {url}/ and its static files from the wheel")
EOF
echo "release check passed: $(basename "$wheel")"
