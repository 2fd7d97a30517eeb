"""Tests for nnscratch.images: the MNIST recipe for pictures, and reading predict's inputs."""

from __future__ import annotations

import gzip
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nnscratch.data import write_idx
from nnscratch.images import (
    BlankImageError,
    InputFormatError,
    PictureTooLargeError,
    UndecodableImageError,
    decode_picture,
    load_inputs,
    preprocess_digit,
    preprocess_product,
    read_digit_arrays,
    read_image,
)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    image = image.astype(np.float64)
    total = image.sum()
    return (float(image.sum(axis=1) @ np.arange(image.shape[0])) / total,
            float(image.sum(axis=0) @ np.arange(image.shape[1])) / total)


def ink_box(image: np.ndarray, level: float = 127.5) -> tuple[int, int]:
    rows = np.flatnonzero((image > level).any(axis=1))
    cols = np.flatnonzero((image > level).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


@pytest.fixture
def seven() -> np.ndarray:
    """A white '7' on black, 60 × 40 pixels, off-centre: a bar and a diagonal."""
    image = np.zeros((60, 40), dtype=np.uint8)
    image[5:11, 3:33] = 255
    for row in range(11, 55):
        col = 32 - (row - 11) // 2
        image[row, col - 3:col + 3] = 255
    return image


# ---------------------------------------------------------------------------------------------
# preprocess_digit


def test_output_is_an_mnist_style_digit(seven):
    digit = preprocess_digit(seven)
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit.max() == 255
    row, col = centre_of_mass(digit)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5
    height, width = ink_box(digit)
    assert 19 <= max(height, width) <= 21  # the longer side fits the 20-pixel box


def test_aspect_ratio_is_kept():
    tall = np.zeros((200, 200), dtype=np.uint8)
    tall[20:180, 80:120] = 255  # 160 × 40: four times taller than wide
    digit = preprocess_digit(tall)
    height, width = ink_box(digit)
    assert height in (20, 21) and width in (5, 6)  # edges may fall mid-pixel
    assert digit.sum() / 255 == pytest.approx(20 * 5, rel=0.05)  # the ink of a 20 × 5 bar


def test_dark_digit_on_light_paper_is_inverted(seven):
    assert np.array_equal(preprocess_digit(255 - seven), preprocess_digit(seven))


def test_background_level_and_contrast_are_normalised(seven):
    faded = 60 + (seven.astype(np.float64) * 100 / 255)  # gray ink on dark-gray paper
    assert np.abs(preprocess_digit(faded).astype(int) - preprocess_digit(seven)).max() <= 1


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 40), st.integers(0, 60), st.booleans())
def test_position_on_the_page_does_not_matter(row, col, light_paper):
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 10:16] = 255
    digit[6:10, 6:18] = 200
    page = np.zeros((68, 88), dtype=np.uint8)
    page[row:row + 28, col:col + 28] = digit
    if light_paper:
        page = 255 - page
    expected = preprocess_digit(digit)
    assert np.array_equal(preprocess_digit(page), expected)


def test_a_digit_that_fits_the_box_is_not_resampled():
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[4:24, 12:18] = 255  # 20 tall: already the box
    digit[4:24, 11] = digit[4:24, 18] = 90  # anti-aliased edges
    digit[16:18, 8:12] = 255  # a crossbar, so the centre of mass is not on a half pixel
    row, col = centre_of_mass(digit)
    assert abs(row - 14) < 0.45 and abs(col - 14) < 0.45
    assert np.array_equal(preprocess_digit(digit), digit)


def test_lanczos_ringing_is_clipped(seven):
    big = np.asarray(Image.fromarray(seven).resize((400, 600), Image.Resampling.LANCZOS))
    digit = preprocess_digit(big)
    assert digit.min() == 0 and digit.max() == 255


@pytest.mark.parametrize("value", [0, 128, 255])
def test_a_uniform_image_is_blank(value):
    with pytest.raises(BlankImageError, match=r"scan\.png: no digit found: the image is blank"):
        preprocess_digit(np.full((30, 30), value), source="scan.png")


def test_faint_noise_is_blank(rng):
    noise = 240 + rng.integers(0, 10, size=(50, 50))
    with pytest.raises(BlankImageError, match="blank"):
        preprocess_digit(noise)


@pytest.mark.parametrize("shape", [(28,), (2, 28, 28), (0, 5)])
def test_a_non_2d_image_is_refused(shape):
    with pytest.raises(ValueError, match="expected a 2-D grayscale image"):
        preprocess_digit(np.zeros(shape), source="x")


def test_non_finite_pixels_are_refused(seven):
    image = seven.astype(np.float64)
    image[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        preprocess_digit(image)


@pytest.mark.slow
def test_mnist_digits_come_back_almost_unchanged(mnist_dir):
    from nnscratch.data import load_mnist

    digits = load_mnist(mnist_dir, progress=False).test_images[:300]
    processed = np.stack([preprocess_digit(d) for d in digits])
    difference = np.abs(processed.astype(int) - digits).max(axis=(1, 2))
    # MNIST's digits already fill the 20-pixel box with their centre of mass at (14, 14), so
    # most pass through untouched (up to the contrast stretch of a 254 peak to 255).
    assert np.mean(difference <= 1) > 0.8
    centres = np.array([centre_of_mass(d) for d in processed])
    assert np.all(np.abs(centres - 14) <= 0.5 + 1e-9)


# ---------------------------------------------------------------------------------------------
# preprocess_product (Fashion-MNIST's recipe)


@pytest.fixture
def boot() -> np.ndarray:
    """A Fashion-MNIST-like picture: a light product filling the height, centred, on black."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[:, 4:24] = 90
    image[16:, 4:24] = 200  # a sole
    image[3:10, 10:18] = 30
    return image


def test_a_fashion_mnist_picture_comes_back_unchanged(boot):
    product = preprocess_product(boot)
    assert product.shape == (28, 28) and product.dtype == np.uint8
    np.testing.assert_array_equal(product, boot)


def test_a_product_photo_on_white_becomes_a_fashion_mnist_picture(boot):
    # Dark on a white studio background, three times larger, off-centre on a wider page.
    big = np.asarray(Image.fromarray(boot).resize((84, 84), Image.Resampling.LANCZOS), float)
    photo = np.full((110, 150), 250.0)  # the paper is not quite white
    photo[12:96, 30:114] = 250.0 - np.clip(big, 0, 250)
    product = preprocess_product(photo)
    assert product[:, :3].max() == 0 and product[:, 25:].max() == 0  # centred like the boot
    assert np.abs(product.astype(int) - boot).mean() < 10  # resampled there and back


def test_a_product_on_a_dark_background_is_not_negated(boot):
    page = np.zeros((40, 40), dtype=np.uint8)
    page[6:34, 6:34] = boot
    np.testing.assert_array_equal(preprocess_product(page), boot)


def test_a_wide_product_is_scaled_to_28_pixels_across():
    photo = np.full((50, 200), 255, dtype=np.uint8)
    photo[20:30, 10:190] = 0  # a belt: 10 x 180
    product = preprocess_product(photo)
    rows = np.flatnonzero(product.any(axis=1))
    assert product[rows[0]:rows[-1] + 1].min(axis=0).max() > 200 and product[:, 0].max() > 200
    assert len(rows) == 2 and rows[0] == 13  # 10 * 28 / 180 rounds to 2, centred


def test_a_blank_photo_has_no_product():
    with pytest.raises(BlankImageError, match=r"photo.png: no product found: the image is blank"):
        preprocess_product(np.full((30, 30), 240.0), source="photo.png")
    with pytest.raises(ValueError, match="expected a 2-D grayscale image"):
        preprocess_product(np.zeros((2, 3, 3)))


@pytest.mark.slow
def test_fashion_mnist_pictures_come_back_within_a_pixel(fashion_dir):
    from nnscratch.data import load_mnist

    pictures = load_mnist(fashion_dir, dataset="fashion-mnist").test_images[:300]
    exact_up_to_a_shift = [
        min(np.abs(np.roll(preprocess_product(p).astype(int), (dr, dc), (0, 1)) - p).max()
            for dr in (-1, 0, 1) for dc in (-1, 0, 1)) == 0
        for p in pictures
    ]
    # The 5 % trim can cut a faint row, moving the product by a pixel or rescaling it a little.
    assert np.mean(exact_up_to_a_shift) > 0.85


# ---------------------------------------------------------------------------------------------
# read_image


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "I;16"])
def test_read_image_converts_any_mode_to_gray(tmp_path, seven, mode):
    path = tmp_path / "seven.png"
    if mode == "I;16":
        picture = Image.fromarray(seven.astype(np.uint16) * 257)
    else:
        picture = Image.fromarray(seven).convert(mode)
    picture.save(path)
    assert np.array_equal(read_image(path), preprocess_digit(seven))


def test_read_image_reads_jpeg(tmp_path, seven):
    path = tmp_path / "seven.jpg"
    Image.fromarray(255 - seven).save(path, quality=90)
    digit = read_image(path)
    assert np.mean(np.abs(digit.astype(int) - preprocess_digit(seven))) < 8


def test_transparent_pixels_count_as_white_paper(tmp_path, seven):
    rgba = np.zeros((*seven.shape, 4), dtype=np.uint8)  # black ink...
    rgba[..., 3] = seven  # ...only where the seven is; transparent elsewhere
    path = tmp_path / "sticker.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    assert np.array_equal(read_image(path), preprocess_digit(seven))


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.png does not exist"):
        read_image(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(InputFormatError, match=r"notes\.png is not a picture Pillow can read"):
        read_image(text)
    whole = tmp_path / "whole.png"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(whole)  # incompressible: the cut loses pixel data
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:1000])
    with pytest.raises(UndecodableImageError, match=r"cut\.png: the picture cannot be decoded"):
        read_image(cut)
    blank = tmp_path / "blank.png"
    Image.new("L", (20, 20), 255).save(blank)
    with pytest.raises(BlankImageError, match=r"blank\.png: no digit found"):
        read_image(blank)



@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF"])
def test_decode_picture_reads_bytes_as_read_image_reads_files(tmp_path, seven, kind):
    path = tmp_path / f"seven.{kind.lower()}"
    Image.fromarray(255 - seven).save(path, kind)
    gray = decode_picture(path.read_bytes())
    assert gray.dtype == np.float64 and gray.shape == seven.shape
    assert np.array_equal(preprocess_digit(gray, source=str(path)), read_image(path))


def test_decode_picture_limits_formats_and_size(seven):
    gif = io.BytesIO()
    Image.fromarray(seven).save(gif, "GIF")
    with pytest.raises(InputFormatError, match="the upload is not a PNG or JPEG picture"):
        decode_picture(gif.getvalue(), source="the upload", formats=("PNG", "JPEG"))
    png = io.BytesIO()
    Image.new("L", (300, 200), 255).save(png, "PNG")
    from PIL import Image as PillowImage

    pillow_limit = PillowImage.MAX_IMAGE_PIXELS
    with pytest.raises(PictureTooLargeError,
                       match=r"300×200 = 60,000 pixels, more than the limit of 50,000.*"
                             r"Send a smaller picture"):
        decode_picture(png.getvalue(), max_pixels=50_000)
    assert decode_picture(png.getvalue(), max_pixels=60_000).shape == (200, 300)
    assert PillowImage.MAX_IMAGE_PIXELS == pillow_limit  # no global state: safe in threads
    with pytest.raises(UndecodableImageError, match="cannot be decoded"):
        decode_picture(png.getvalue()[:60], formats=("PNG",))

# ---------------------------------------------------------------------------------------------
# read_digit_arrays and load_inputs


@pytest.fixture
def batch(rng) -> np.ndarray:
    return rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("shape", [(3, 28, 28), (3, 784)])
def test_read_digit_arrays_from_npy(tmp_path, batch, shape):
    path = tmp_path / "digits.npy"
    np.save(path, batch.reshape(shape))
    assert np.array_equal(read_digit_arrays(path), batch)


@pytest.mark.parametrize("compress", [False, True])
def test_read_digit_arrays_from_idx(tmp_path, batch, compress):
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, batch)
    if compress:
        path.write_bytes(gzip.compress(path.read_bytes()))
    assert np.array_equal(read_digit_arrays(path), batch)


def test_file_type_is_told_by_content_not_name(tmp_path, batch):
    path = tmp_path / "digits.png"  # misnamed
    np.save(tmp_path / "x.npy", batch)
    path.write_bytes((tmp_path / "x.npy").read_bytes())
    assert np.array_equal(read_digit_arrays(path), batch)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 32, 32), dtype=np.uint8), r"shape \(3, 32, 32\); expected MNIST-style"),
        (np.zeros((0, 28, 28), dtype=np.uint8), "empty array"),
        (np.zeros((28, 28), dtype=np.float32), "float32 values; expected integer gray levels"),
        (np.full((28, 28), 300, dtype=np.int16), "values from 300 to 300"),
        (np.array([[None]], dtype=object), "pickled objects"),
    ],
)
def test_read_digit_arrays_refuses_other_arrays(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(InputFormatError, match=message):
        read_digit_arrays(path)


def test_read_digit_arrays_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_digit_arrays(tmp_path / "missing.npy")
    picture = tmp_path / "p.png"
    Image.new("L", (5, 5)).save(picture)
    with pytest.raises(InputFormatError, match=r"neither a \.npy nor an IDX file"):
        read_digit_arrays(picture)
    broken = tmp_path / "broken-idx"
    broken.write_bytes(bytes([0, 0, 0x08, 3, 0, 0, 0, 9]))
    with pytest.raises(InputFormatError, match="broken-idx"):
        read_digit_arrays(broken)


def test_load_inputs_names_every_image(tmp_path, batch, seven):
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("b.png", "a.jpg"):
        Image.fromarray(seven).save(folder / name)
    (folder / "notes.txt").write_text("ignored")
    np.save(tmp_path / "many.npy", batch)
    np.save(tmp_path / "one.npy", batch[0])
    Image.fromarray(seven).save(tmp_path / "single.png")
    names, images = load_inputs([tmp_path / "single.png", folder, tmp_path / "many.npy",
                                 tmp_path / "one.npy"])
    assert names == [
        str(tmp_path / "single.png"), str(folder / "a.jpg"), str(folder / "b.png"),
        *(f"{tmp_path / 'many.npy'}[{i}]" for i in range(3)), str(tmp_path / "one.npy"),
    ]
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images[3:6], batch) and np.array_equal(images[6], batch[0])
    assert np.array_equal(images[0], preprocess_digit(seven))


def test_load_inputs_errors(tmp_path: Path):
    with pytest.raises(ValueError, match="no inputs given"):
        load_inputs([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFormatError, match="empty holds no pictures"):
        load_inputs([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match=r"nothing\.png does not exist"):
        load_inputs([tmp_path / "nothing.png"])


# ---------------------------------------------------------------------------------------------
# Bounded inputs: big pictures reduced while decoding, bombs and lying headers refused


def _big_picture(seven: np.ndarray, mode: str, size: tuple[int, int]) -> tuple[Image.Image,
                                                                              np.ndarray]:
    """``seven`` scaled up to ``size`` as a dark digit on white paper, in ``mode``, and the
    gray levels the file holds (what preprocessing without reduction would start from)."""
    gray = Image.fromarray(255 - seven).resize(size, Image.Resampling.BILINEAR)
    levels = np.asarray(gray)
    if mode == "I;16":
        return Image.fromarray(levels.astype(np.uint16) * 257), levels
    if mode == "RGBA":  # black ink, opaque only where the digit is
        rgba = np.zeros((*levels.shape, 4), dtype=np.uint8)
        rgba[..., 3] = 255 - levels
        return Image.fromarray(rgba, mode="RGBA"), levels
    return gray.convert(mode), np.asarray(gray.convert(mode).convert("L"))


@pytest.mark.parametrize(
    ("mode", "size", "suffix"),
    [("L", (4200, 1800), ".png"), ("RGB", (1500, 4200), ".png"), ("P", (4200, 1600), ".png"),
     ("RGBA", (4200, 1400), ".png"), ("I;16", (4200, 1500), ".png"), ("L", (4200, 2000), ".jpg"),
     ("RGB", (6500, 3000), ".jpg"), ("L", (4200, 1500), ".bmp")],
)
def test_a_big_picture_is_reduced_while_decoding_to_the_same_digit(tmp_path, seven, mode,
                                                                   size, suffix):
    import tracemalloc

    picture, levels = _big_picture(seven, mode, size)
    path = tmp_path / f"big{suffix}"
    picture.save(path, **({"quality": 92} if suffix == ".jpg" else {}))
    tracemalloc.start()
    try:
        digit = read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    full = preprocess_digit(levels)  # the same picture, never reduced
    difference = np.abs(digit.astype(int) - full)
    assert difference.max() <= 4 and difference.mean() < 0.5, (difference.max(),
                                                                difference.mean())
    # Floats are computed only on the reduced picture (at most 2048 on a side, here a ninth
    # of the area or less): preprocessing at full size would take several float64 copies of
    # the whole picture, this takes less than one.
    assert peak < 0.6 * size[0] * size[1] * 8, peak


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_the_exif_orientation_is_applied_small_or_reduced(tmp_path, seven, suffix):
    for size in ((40, 60), (2600, 3900)):  # as it is, and reduced while decoding
        upright = Image.fromarray(255 - seven).resize(size, Image.Resampling.BILINEAR)
        rotated = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera stored
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90° clockwise to display"
        path = tmp_path / f"photo{suffix}"
        rotated.save(path, exif=exif, **({"quality": 95} if suffix == ".jpg" else {}))
        expected = preprocess_digit(np.asarray(upright))
        difference = np.abs(read_image(path).astype(int) - expected)
        assert difference.mean() < 1.5, (size, difference.mean())


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    from _tamper import png_header_only

    bomb = tmp_path / "bomb.png"
    png_header_only(bomb, 100_000, 100_000)
    assert bomb.stat().st_size < 200
    with pytest.raises(InputFormatError, match=r"bomb\.png holds (100000×100000 = )?"
                                               r"10,000,000,000 pixels, more than the limit of "
                                               r"200,000,000.*decompression bomb.*--max-pixels N"):
        read_image(bomb)


def test_max_pixels_is_the_limit_and_pillows_own_check_follows_it(tmp_path, seven):
    from PIL import Image as PillowImage

    path = tmp_path / "seven.png"
    Image.fromarray(seven).save(path)  # 40 × 60 = 2400 pixels
    previous = PillowImage.MAX_IMAGE_PIXELS
    assert read_image(path, max_pixels=2400).shape == (28, 28)
    with pytest.raises(InputFormatError, match=r"holds 40×60 = 2,400 pixels, more than the "
                                               r"limit of 2,399"):
        read_image(path, max_pixels=2399)
    # Far above the limit Pillow refuses inside Image.open: the same message, the same file.
    with pytest.raises(InputFormatError, match=r"seven\.png holds 2,400 pixels, more than the "
                                               r"limit of 100"):
        read_image(path, max_pixels=100)
    assert PillowImage.MAX_IMAGE_PIXELS == previous  # restored
    with pytest.raises(ValueError, match="max_pixels must be >= 1"):
        read_image(path, max_pixels=0)


def test_a_10000_pixel_square_picture_is_within_the_default_limit(tmp_path):
    from _tamper import png_header_only
    from nnscratch.images import MAX_PIXELS

    assert MAX_PIXELS == 200_000_000 >= 10_000 * 10_000
    header_only = tmp_path / "scan.png"
    png_header_only(header_only, 10_000, 10_000)  # passes the limit, then fails to decode
    with pytest.raises(InputFormatError, match=r"scan\.png: the picture cannot be decoded"):
        read_image(header_only)


@pytest.mark.parametrize(
    ("shape", "dtype", "payload", "message"),
    [
        ((100_000, 28, 28), "uint8", bytes(100),
         r"declares an array of shape \(100000, 28, 28\) of uint8 \(78,400,000 bytes\), but the "
         r"file holds only 100 bytes after the header; the file is truncated"),
        ((1_000_000_000, 784), "uint8", bytes(100),
         r"holds \(1000000000, 784\) = 784,000,000,000 gray levels, more than the limit of "
         r"200,000,000.*--max-pixels"),
        ((10**12, 3), "uint8", bytes(100), r"holds an array of shape \(1000000000000, 3\); "
                                           r"expected MNIST-style images"),
        ((10**9, 28, 28), "float64", bytes(100), r"holds float64 values; expected integer"),
    ],
)
def test_npy_headers_are_checked_before_the_data_are_read(tmp_path, shape, dtype, payload,
                                                          message):
    import tracemalloc

    from _tamper import npy_with_header

    path = tmp_path / "digits.npy"
    npy_with_header(path, shape, dtype, payload)
    tracemalloc.start()
    try:
        with pytest.raises(InputFormatError, match=re.escape(str(path)) + ".*" + message):
            read_digit_arrays(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_the_pixel_limit_bounds_array_files_too(tmp_path, batch):
    np.save(tmp_path / "batch.npy", batch)  # 3 images: 2352 gray levels
    assert read_digit_arrays(tmp_path / "batch.npy", max_pixels=2352).shape == (3, 28, 28)
    with pytest.raises(InputFormatError, match=r"= 2,352 gray levels, more than the limit of "
                                               r"2,351"):
        read_digit_arrays(tmp_path / "batch.npy", max_pixels=2351)
    write_idx(tmp_path / "batch-idx3-ubyte.gz", batch)
    with pytest.raises(InputFormatError, match=r"3×28×28 = 2,352 elements, more than the limit "
                                               r"of 2,351.*nnscratch predict --max-pixels N"):
        read_digit_arrays(tmp_path / "batch-idx3-ubyte.gz", max_pixels=2351)
    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + (10**5).to_bytes(4, "big")
                                   + (28).to_bytes(4, "big") * 2 + bytes(1000)))
    with pytest.raises(InputFormatError, match=r"bomb-idx3-ubyte\.gz: the header declares "
                                               r"100000×28×28 of uint8 \(78,400,016 bytes\), "
                                               r"but \d+ gzipped bytes can expand to at most"):
        read_digit_arrays(bomb)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
@pytest.mark.parametrize("call", ["read_image(path)", "read_digit_arrays(path)",
                                  "load_inputs([path])"])
def test_a_named_pipe_input_is_refused_at_once(tmp_path, call):
    from _tamper import error_in_child

    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    refusal = error_in_child(f"from nnscratch.images import *; {call}", fifo)
    assert refusal.startswith(f"NotRegularFileError: {fifo} is a named pipe (FIFO)"), refusal


# --- stroke width (issue 22): a digit drawn small with a wide brush --------------------------


def _drawn_one(height: int, brush: int) -> np.ndarray:
    """A "1" (a vertical bar) `height` pixels tall, `brush` wide, black on a 140-pixel page."""
    page = np.full((140, 140), 255, dtype=np.uint8)
    top = 70 - height // 2
    page[top:top + height, 70 - brush // 2:70 - brush // 2 + brush] = 0
    return page


def test_a_thick_small_digit_comes_out_with_mnist_like_strokes():
    from nnscratch.images import _MNIST_STROKE, _stroke_width

    plain = preprocess_digit(_drawn_one(height=28, brush=11))  # 20 % of the pad, its brush
    width = _stroke_width(plain > 127)
    assert width < 2 * _MNIST_STROKE, width  # was about 8 pixels: an oval, not a 1
    assert int((plain > 127).any(axis=1).sum()) >= 18  # still a tall stroke


def test_a_normal_size_digit_is_unchanged_by_the_stroke_normalisation(monkeypatch):
    import nnscratch.images as images

    page = _drawn_one(height=112, brush=11)  # 80 % of the pad: MNIST's proportions
    normalised = preprocess_digit(page)
    monkeypatch.setattr(images, "_THICK_STROKE", float("inf"))
    np.testing.assert_array_equal(normalised, preprocess_digit(page))
