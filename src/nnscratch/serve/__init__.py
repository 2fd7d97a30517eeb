"""``nnscratch serve``: a page to draw a digit on and watch the network answer, and its JSON API.

- :mod:`~nnscratch.serve.predictor`: :class:`Predictor`, a loaded model that labels one picture
  exactly as ``nnscratch predict`` does, and reports what the network saw and its first hidden
  layer.
- :mod:`~nnscratch.serve.app`: :func:`create_app`, the FastAPI application (the page, ``POST
  /api/predict``, ``GET /api/model``, ``GET /healthz``).
- :mod:`~nnscratch.serve.default_model`: which model to serve when none is named.
- :mod:`~nnscratch.serve.server`: :func:`serve`, which binds the socket and runs uvicorn.
- ``static/``: the page (``index.html``, ``pad.js``, ``style.css``), with no outside assets.

FastAPI and uvicorn are imported only by this package, so the rest of nnscratch does not pay
for them. ``docs/serve.md`` documents the command and the API.
"""

from __future__ import annotations

from nnscratch.serve.app import MAX_BODY_BYTES, create_app
from nnscratch.serve.predictor import Prediction, Predictor
from nnscratch.serve.server import serve

__all__ = ["MAX_BODY_BYTES", "Prediction", "Predictor", "create_app", "serve"]
