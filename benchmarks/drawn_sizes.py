"""Digits drawn on the page's pad at several sizes: does the answer depend on the size?

Each MNIST test digit is thinned to its centre lines (Zhang-Suen thinning) and redrawn on
``serve``'s 280-pixel pad, the digit's height a given share of the pad's, then scaled to the
140 pixels the page sends, preprocessed by ``nnscratch.images.preprocess_digit`` and read by a
mnist10 model. Printed, at each size, the accuracy of

- what the page sends: the strokes redrawn with a brush in proportion to the drawing (the
  page's ``sentBrush``: 0.15 of the centre lines' longer side, between 4 px and the pad's 22);
- the pad's own pixels (the fixed 22-pixel brush), as a client sending a raster would, with
  ``preprocess_digit``'s stroke-width normalisation (the default) and without it.

    python benchmarks/drawn_sizes.py MODEL.npz [--n 500]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

from nnscratch import images
from nnscratch.data import load_mnist, preprocess_images
from nnscratch.serialization import load_model

PAD, BRUSH, SENT = 280, 22, 140
SIZES = (0.20, 0.45, 0.80)
# pad.js: SENT_BRUSH_SHARE and MIN_SENT_BRUSH (tests/test_serve_browser.py checks they agree)
SENT_BRUSH_SHARE, MIN_SENT_BRUSH = 0.15, 4.0


def sent_brush(extent: float) -> float:
    """The brush the page draws what it sends with, for centre lines ``extent`` pixels long
    on their longer side (pad.js's ``sentBrush``)."""
    return min(BRUSH, max(MIN_SENT_BRUSH, SENT_BRUSH_SHARE * extent))


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image to one-pixel lines (vectorised per sub-step)."""
    skeleton = np.pad(mask.astype(bool), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = skeleton
            n = [np.roll(np.roll(p, dr, 0), dc, 1) for dr, dc in
                 ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))]
            # neighbours P2..P9 clockwise from north: north is the row above (roll +1 brings it)
            p2, p3, p4, p5, p6, p7, p8, p9 = n
            count = sum(x.astype(int) for x in n)
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            transitions = sum((~a & b).astype(int) for a, b in itertools.pairwise(ring))
            if step == 0:
                cond = ~(p2 & p4 & p6) & ~(p4 & p6 & p8)
            else:
                cond = ~(p2 & p4 & p8) & ~(p2 & p6 & p8)
            remove = p & (count >= 2) & (count <= 6) & (transitions == 1) & cond
            if remove.any():
                skeleton = p & ~remove
                changed = True
    return skeleton[1:-1, 1:-1]


def redraw(digit: np.ndarray, share: float, *, proportional: bool = False) -> np.ndarray:
    """The digit's centre lines drawn on the pad, its height `share` of the pad's, scaled to
    the size sent; with the pad's brush, or with `proportional`, the page's sent brush."""
    skeleton = thin(digit > 127)
    rows, cols = np.nonzero(skeleton)
    height = max(rows.max() - rows.min(), 1)
    scale = share * PAD / height
    cy, cx = (rows.max() + rows.min()) / 2, (cols.max() + cols.min()) / 2
    extent = max(rows.max() - rows.min(), cols.max() - cols.min()) * scale
    brush = sent_brush(extent) if proportional else BRUSH
    pad = Image.new("L", (PAD, PAD), 255)
    draw = ImageDraw.Draw(pad)
    points = {(r, c) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)}

    def at(r: int, c: int) -> tuple[float, float]:
        return (PAD / 2 + (c - cx) * scale, PAD / 2 + (r - cy) * scale)

    for r, c in points:  # a segment to each 8-neighbour: the strokes stay joined
        x, y = at(r, c)
        draw.ellipse((x - brush / 2, y - brush / 2, x + brush / 2, y + brush / 2), fill=0)
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            if (r + dr, c + dc) in points:
                draw.line((x, y, *at(r + dr, c + dc)), fill=0, width=round(brush))
    sent = pad.resize((SENT, SENT), Image.Resampling.BILINEAR)  # as the canvas drawImage does
    return np.asarray(sent)


def accuracy(saved, pictures: list[np.ndarray], labels: np.ndarray) -> float:
    digits = np.stack([images.preprocess_digit(p) for p in pictures])
    X = preprocess_images(digits, saved.model.dtype)
    predicted = saved.classes[saved.predict_class_indices(X)]
    return float(np.mean(predicted == labels))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--n", type=int, default=500, help="MNIST test digits (default 500)")
    args = parser.parse_args()
    saved = load_model(args.model)
    mnist = load_mnist(verify=False)
    digits, labels = mnist.test_images[:args.n], mnist.test_labels[:args.n]
    start = time.perf_counter()
    print(f"{args.n} MNIST test digits redrawn on a {PAD}-px pad")
    print("height on the pad | what the page sends | pad pixels, normalised | not normalised")
    for share in SIZES:
        page = accuracy(saved, [redraw(d, share, proportional=True) for d in digits], labels)
        pictures = [redraw(d, share) for d in digits]
        normalised = accuracy(saved, pictures, labels)
        original = images._THICK_STROKE
        images._THICK_STROKE = float("inf")  # the preprocessing before the normalisation
        try:
            plain = accuracy(saved, pictures, labels)
        finally:
            images._THICK_STROKE = original
        print(f"{share:>17.0%} | {page:>19.1%} | {normalised:>22.1%} | {plain:>14.1%}",
              flush=True)
    print(f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
