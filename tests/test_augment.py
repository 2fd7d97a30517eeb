"""Tests for nnscratch.data.augment: the maps, the random augmentation, the background batches."""

from __future__ import annotations

import _thread
import contextlib
import threading
import time

import numpy as np
import pytest
from scipy import ndimage

from _numerics import assert_close
from nnscratch.data.augment import (
    Augmentation,
    BackgroundBatches,
    _affine_coordinates,
    _resample_each,
    _smooth,
    affine_transform,
    augmented_batches,
    elastic_displacement,
    move_pixels,
    resample,
)
from nnscratch.nn.training import minibatches

FULL = {"shift": 2.0, "rotation": 15.0, "scale": 0.15, "shear": 10.0, "flip": True,
        "elastic_alpha": 34.0, "elastic_sigma": 4.0}


def digit_like(rng: np.random.Generator, n: int = 6, dtype=np.float32) -> np.ndarray:
    """Blobs of ink in [0, 1] inside the middle 16x16 of 28x28 images, zero around them."""
    images = np.zeros((n, 28, 28), dtype=dtype)
    images[:, 6:22, 6:22] = rng.random((n, 16, 16))
    return images


# --- resampling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stacked_resampling_equals_one_call_per_image(rng, dtype):
    images = rng.random((9, 28, 28)).astype(dtype)
    # Source points inside, on and far outside the borders, including exact integers.
    coordinates = rng.uniform(-6.0, 34.0, (9, 2, 28, 28))
    coordinates[:, :, ::3, ::3] = np.round(coordinates[:, :, ::3, ::3])
    coordinates[0, 0, 0, :4] = [-1.0, -0.5, 27.0, 27.5]
    result = resample(images, coordinates)
    assert result.dtype == dtype and result.shape == images.shape
    assert_close(result, _resample_each(images, coordinates))


def test_resampling_at_the_pixel_grid_is_the_identity(rng):
    images = rng.random((3, 5, 7))
    grid = np.stack(np.meshgrid(np.arange(5.0), np.arange(7.0), indexing="ij"))
    np.testing.assert_array_equal(resample(images, np.broadcast_to(grid, (3, 2, 5, 7))), images)


def test_resampling_reads_zero_outside_and_interpolates_towards_it():
    image = np.ones((1, 4, 4))
    coordinates = np.zeros((1, 2, 4, 4))
    coordinates[0, 0] = [[-0.5] * 4, [-1.0] * 4, [-7.0] * 4, [1.25] * 4]
    coordinates[0, 1] = 1.0
    assert resample(image, coordinates)[0, :, 0].tolist() == [0.5, 0.0, 0.0, 1.0]


# --- affine maps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identity_parameters_give_the_input_back(rng, dtype):
    images = rng.random((4, 28, 28)).astype(dtype)
    np.testing.assert_array_equal(affine_transform(images), images)
    for flat in (False, True):
        X = images.reshape(4, -1) if flat else images
        out = Augmentation(elastic_alpha=0.0)(X, np.random.default_rng(1))
        assert out.dtype == dtype and out.shape == X.shape
        np.testing.assert_array_equal(out, X)


@pytest.mark.parametrize(("down", "right"), [(0, 3), (2, 0), (-3, 1), (4, -4)])
def test_a_shift_by_whole_pixels_is_a_roll_away_from_the_border(rng, down, right):
    images = digit_like(rng)  # zero within 6 pixels of every border: nothing wraps around
    expected = np.roll(images, (down, right), axis=(1, 2))
    np.testing.assert_array_equal(affine_transform(images, shift=(down, right)), expected)


def test_whole_pixel_shifts_move_pixels_without_interpolating(rng):
    images = digit_like(rng, n=40)
    out = Augmentation(shift=2.0, whole_pixel_shift=True, flip=True)(images,
                                                                      np.random.default_rng(0))
    moves = set()
    for image, moved in zip(images, out, strict=True):
        matches = [(dr, dc, mirror) for dr in range(-2, 3) for dc in range(-2, 3)
                   for mirror in (False, True)
                   if np.array_equal(np.roll(image[:, ::-1] if mirror else image, (dr, dc),
                                             axis=(0, 1)), moved)]
        assert len(matches) == 1  # exactly a roll (and maybe a mirror) of the original
        moves.add(matches[0])
    assert len(moves) > 10  # and the moves vary


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_moving_whole_pixels_equals_resampling_at_the_same_map(rng, dtype):
    # The speed trick and the plain expression it equals: the bilinear read of a map that only
    # mirrors and shifts by whole pixels, on images with ink up to the border (so pixels do
    # fall outside).
    images = rng.random((30, 28, 28)).astype(dtype)
    shift = rng.integers(-3, 4, (30, 2)).astype(np.float64)
    flip = rng.random(30) < 0.5
    plain = resample(images, _affine_coordinates(28, 28, np.zeros(30), np.ones(30),
                                                 np.zeros(30), shift, flip))
    moved = move_pixels(images, shift, flip)
    assert moved.dtype == dtype
    assert_close(moved, plain)


def test_moving_whole_pixels_on_a_small_picture():
    picture = np.arange(1.0, 7.0).reshape(1, 2, 3)  # [[1, 2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(move_pixels(picture, np.array([[0, 1]]), np.array([True])),
                                  [[[0, 3, 2], [0, 6, 5]]])  # mirrored, then moved right
    np.testing.assert_array_equal(move_pixels(picture, np.array([[-1, 0]]), np.array([False])),
                                  [[[4, 5, 6], [0, 0, 0]]])  # moved up
    np.testing.assert_array_equal(move_pixels(picture, np.array([[0, 0]]), np.array([False])),
                                  picture)


@pytest.mark.parametrize(("settings", "whole"), [
    ({"flip": True}, True), ({"shift": 2.0, "whole_pixel_shift": True}, True),
    ({"shift": 2.0}, False), ({"flip": True, "rotation": 5.0}, False),
    ({"flip": True, "elastic_alpha": 8.0}, False), ({}, True),
])
def test_whole_pixel_augmentations_take_the_copy_and_give_the_resampled_batch(rng, settings,
                                                                              whole):
    augment = Augmentation(**settings)
    assert augment.moves_whole_pixels is whole
    X = rng.random((40, 784)).astype(np.float32)
    out = augment(X, np.random.default_rng(5))
    # The same draws through the general path: the sampling map, resampled.
    coordinates = augment.source_coordinates(40, np.random.default_rng(5))
    assert_close(out, resample(X.reshape(40, 28, 28), coordinates).reshape(40, 784))


def test_per_image_parameters(rng):
    images = digit_like(rng, n=3)
    shifted = affine_transform(images, shift=[(0, 1), (0, 2), (1, 0)])
    for image, out, step in zip(images, shifted, [(0, 1), (0, 2), (1, 0)], strict=True):
        np.testing.assert_array_equal(out, np.roll(image, step, axis=(0, 1)))


def test_quarter_turn_and_mirror_are_exact_permutations(rng):
    images = rng.random((2, 28, 28))
    # Anticlockwise on screen; the centre (13.5, 13.5) maps pixels onto pixels.
    assert_close(affine_transform(images, rotation=90.0), np.rot90(images, 1, axes=(1, 2)))
    np.testing.assert_array_equal(affine_transform(images, flip=True), images[:, :, ::-1])


def test_scale_and_shear_move_content_as_documented():
    image = np.zeros((1, 29, 29))
    image[0, 14, 18] = 1.0  # 4 pixels right of the centre (14, 14)
    doubled = affine_transform(image, scale=2.0)
    assert np.unravel_index(np.argmax(doubled[0]), (29, 29)) == (14, 22)
    image = np.zeros((1, 29, 29))
    image[0, 18, 14] = 1.0  # 4 rows below the centre
    sheared = affine_transform(image, shear=45.0)  # moves right by tan(45°) * 4
    assert np.unravel_index(np.argmax(sheared[0]), (29, 29)) == (18, 18)


def test_affine_transform_errors(rng):
    with pytest.raises(ValueError, match=r"images must have shape \(n_images, height, width\)"):
        affine_transform(np.zeros((28, 28)))
    with pytest.raises(TypeError, match="pass floating-point images"):
        affine_transform(np.zeros((1, 28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"shift must be one value pair or one per image \(2\)"):
        affine_transform(np.zeros((2, 28, 28)), shift=[(1, 1)] * 3)
    with pytest.raises(ValueError, match="scale must be positive"):
        affine_transform(np.zeros((1, 28, 28)), scale=0.0)


# --- elastic distortion --------------------------------------------------------------------------


def test_smoothing_by_matrix_products_equals_gaussian_filter(rng):
    for sigma in (0.5, 4.0, 9.0):  # a kernel shorter and longer than the image
        fields = rng.uniform(-1, 1, (3, 2, 28, 20))
        assert_close(_smooth(fields, sigma), ndimage.gaussian_filter(fields, (0, 0, sigma, sigma)))
        assert_close(_smooth(fields.astype(np.float32), sigma),
                     ndimage.gaussian_filter(fields, (0, 0, sigma, sigma)).astype(np.float32))


def test_elastic_displacement_is_the_smoothed_noise_scaled_by_alpha():
    field = elastic_displacement(4, (28, 28), alpha=34.0, sigma=4.0,
                                 rng=np.random.default_rng(3), dtype=np.float64)
    noise = np.random.default_rng(3).random((4, 2, 28, 28)) * 2 - 1
    assert field.shape == (4, 2, 28, 28) and field.dtype == np.float64
    assert_close(field, 34.0 * ndimage.gaussian_filter(noise, (0, 0, 4.0, 4.0)))


def test_elastic_alpha_zero_is_the_identity(rng):
    images = rng.random((5, 784)).astype(np.float32)
    out = Augmentation(elastic_alpha=0.0, elastic_sigma=4.0)(images, rng)
    np.testing.assert_array_equal(out, images)
    field = elastic_displacement(5, (28, 28), alpha=0.0, sigma=4.0, rng=rng)
    assert not np.any(field)


# --- the random augmentation ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("settings", [FULL, {"shift": 2.0, "flip": True}, {"elastic_alpha": 8}],
                         ids=["everything", "shift-flip", "elastic"])
def test_shape_dtype_and_range(rng, dtype, settings):
    X = rng.random((16, 784)).astype(dtype)
    X[0] = 1.0
    out = Augmentation(**settings)(X, np.random.default_rng(0))
    assert out.shape == X.shape and out.dtype == dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.all(np.isfinite(out)) and not np.array_equal(out, X)
    np.testing.assert_array_equal(X[0], 1.0)  # the input is not modified
    images = Augmentation(**settings)(X.reshape(16, 28, 28), np.random.default_rng(0))
    np.testing.assert_array_equal(images.reshape(16, 784), out)  # flat rows or images alike


def test_the_same_seed_gives_the_same_batch_and_another_seed_another(rng):
    X = rng.random((8, 784)).astype(np.float32)
    augment = Augmentation(**FULL)
    first = augment(X, np.random.default_rng(7))
    np.testing.assert_array_equal(augment(X, np.random.default_rng(7)), first)
    assert not np.allclose(augment(X, np.random.default_rng(8)), first)


def test_each_image_gets_its_own_map(rng):
    X = np.tile(digit_like(rng, n=1).reshape(1, -1), (4, 1))
    out = Augmentation(shift=3.0)(X, np.random.default_rng(0))
    assert len({row.tobytes() for row in out}) == 4


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        # Past these bounds the images come out blank, or the work has no bound (issue 22).
        ({"shift": 1e9}, r"shift must be <= 14\.0, got 1000000000\.0"),
        ({"shift": 14.5}, r"shift must be <= 14\.0"),
        ({"elastic_alpha": 1e9}, r"elastic_alpha must be <= 280\.0"),
        ({"elastic_sigma": 1e7}, r"elastic_sigma must be <= 28\.0"),
        ({"elastic_sigma": 1e9}, r"elastic_sigma must be <= 28\.0"),
        ({"rotation": 181}, r"rotation must be <= 180\.0"),
        ({"shear": 90}, r"shear must be < 90\.0"),
        ({"shift": float("inf")}, "shift must be finite"),
        ({"elastic_alpha": float("nan")}, "elastic_alpha must be finite"),
        ({"shift": 9, "image_shape": (16, 40)}, r"shift must be <= 8\.0"),
    ],
)
def test_every_augmentation_parameter_has_bounds(settings, match):
    with pytest.raises(ValueError, match=match):
        Augmentation(**settings)


def test_the_largest_accepted_parameters_still_run(rng):
    augment = Augmentation(shift=14, rotation=180, scale=0.99, shear=89, elastic_alpha=280,
                           elastic_sigma=28)
    assert augment(digit_like(rng, n=2).reshape(2, -1), rng).shape == (2, 784)


def test_augmentation_settings_round_trip_and_errors():
    augment = Augmentation.from_settings({"shift": 2, "elastic_alpha": 34})
    assert augment == Augmentation(shift=2.0, elastic_alpha=34.0)
    assert Augmentation.from_settings({k: v for k, v in augment.get_config().items()
                                       if k != "image_shape"}) == augment
    assert repr(augment) == "Augmentation(shift=2.0, elastic_alpha=34.0)"
    assert Augmentation().is_identity and not augment.is_identity
    with pytest.raises(ValueError, match=r"augment has unknown setting.* rotate; the settings are"):
        Augmentation.from_settings({"rotate": 10})
    with pytest.raises(ValueError, match=r"scale must be < 1\.0"):
        Augmentation(scale=1.0)
    with pytest.raises(ValueError, match=r"elastic_sigma must be > 0\.0"):
        Augmentation(elastic_sigma=0)
    with pytest.raises(TypeError, match="flip must be True or False"):
        Augmentation(flip=1)
    with pytest.raises(ValueError, match=r"image_shape must be \(height, width\)"):
        Augmentation(image_shape=(28,))
    with pytest.raises(ValueError, match=r"augment works on 28x28 images \(784 values per row\), "
                                         r"but X has 5 features"):
        Augmentation(shift=1)(np.zeros((2, 5)), np.random.default_rng())
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        Augmentation(shift=1)(np.zeros((2, 784)), 0)
    with pytest.raises(TypeError, match="pass floating-point images"):
        Augmentation(shift=1)(np.zeros((2, 784), dtype=np.uint8), np.random.default_rng())


# --- batches prepared in the background -----------------------------------------------------------


def _epoch(X, y, *, background, seed=0):
    batches = minibatches(X, y, batch_size=16, rng=np.random.default_rng(seed))
    with contextlib.closing(augmented_batches(batches, Augmentation(**FULL),
                                              np.random.default_rng(seed + 1),
                                              background=background)) as epoch:
        return list(epoch)


def test_background_batches_equal_the_inline_ones(rng):
    X, y = rng.random((100, 784)).astype(np.float32), np.arange(100)
    inline, background = _epoch(X, y, background=False), _epoch(X, y, background=True)
    assert len(inline) == len(background) == 7
    for (X_a, y_a), (X_b, y_b) in zip(inline, background, strict=True):
        assert_close(X_b, X_a)
        np.testing.assert_array_equal(y_b, y_a)  # labels travel with their images
    assert not np.array_equal(inline[0][0], X[:16])  # and the images were augmented


def test_whole_pixel_moves_are_prepared_inline_and_others_in_the_background(rng):
    batches = [(rng.random((4, 784)).astype(np.float32), np.zeros(4))]
    cheap = augmented_batches(batches, Augmentation(flip=True), rng)
    assert not isinstance(cheap, BackgroundBatches)
    with contextlib.closing(augmented_batches(batches, Augmentation(shift=1.0), rng)) as costly:
        assert isinstance(costly, BackgroundBatches)
    with contextlib.closing(augmented_batches(batches, Augmentation(flip=True), rng,
                                              background=True)) as asked:
        assert isinstance(asked, BackgroundBatches)
    with pytest.raises(ValueError, match="background must be True, False or 'auto'"):
        augmented_batches(batches, Augmentation(flip=True), rng, background="yes")


def test_background_keeps_the_order_of_any_iterable():
    with BackgroundBatches(iter(range(50)), prefetch=3) as items:
        assert list(items) == list(range(50))
        assert next(items, "end") == "end"


def _wait_until(condition, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _producer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nnscratch-batches"]


def test_an_error_in_the_producer_is_raised_in_the_consumer():
    closed = []

    def failing():
        try:
            yield 1
            yield 2
            raise OSError("disk on fire")
        finally:
            closed.append(True)

    items = BackgroundBatches(failing())
    assert next(items) == 1 and next(items) == 2
    with pytest.raises(OSError, match="disk on fire") as info:
        next(items)
    assert "failing" in str(info.traceback[-1])  # the producer's own traceback
    assert closed == [True] and not items._thread.is_alive()
    assert next(items, "end") == "end"


def test_closing_stops_a_producer_that_is_ahead_of_the_consumer():
    produced, closed = [], []

    def endless():
        try:
            for i in range(10**9):
                produced.append(i)
                yield i
        finally:
            closed.append(True)

    items = BackgroundBatches(endless(), prefetch=2)
    assert next(items) == 0
    assert _wait_until(lambda: len(produced) >= 3)  # blocked on the full queue
    items.close()
    assert not items._thread.is_alive() and closed == [True]
    assert len(produced) <= 5  # it stopped instead of running on
    assert next(items, "end") == "end"


def test_ctrl_c_in_the_consumer_stops_the_producer():
    started = threading.Event()

    def slow():
        started.set()
        while True:
            time.sleep(0.01)
            yield np.zeros(3)

    before = len(_producer_threads())
    # Ctrl-C arrives while the consumer waits in next(): deliver it from another thread.
    timer = threading.Timer(0.2, _thread.interrupt_main)
    with pytest.raises(KeyboardInterrupt), BackgroundBatches(slow(), prefetch=1) as items:
        assert started.wait(5)
        timer.start()
        for _ in items:
            time.sleep(0.05)  # the training step
    timer.join()
    assert _wait_until(lambda: len(_producer_threads()) == before, timeout=1.0)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_in_training_stops_the_producer_inside_fit(rng, error):
    from nnscratch.nn.losses import SoftmaxCrossEntropy
    from nnscratch.nn.model import build_mlp
    from nnscratch.nn.optimizers import SGD
    from nnscratch.nn.training import fit

    class FailingLoss(SoftmaxCrossEntropy):
        calls = 0

        def forward(self, *args, **kwargs):
            FailingLoss.calls += 1
            if FailingLoss.calls == 3:  # mid-epoch, with the producer running ahead
                raise error("step 3")
            return super().forward(*args, **kwargs)

    model = build_mlp(784, [8], 3, rng=0, dtype=np.float32)
    X, y = rng.random((200, 784)).astype(np.float32), rng.integers(0, 3, 200)
    before = len(_producer_threads())
    with pytest.raises(error, match="step 3"):
        fit(model, X, y, loss=FailingLoss(), optimizer=SGD(model.parameters(), 0.1), epochs=3,
            batch_size=8, augment=Augmentation(shift=2.0), verbose=0)
    assert _wait_until(lambda: len(_producer_threads()) == before, timeout=1.0)


def test_prefetch_must_be_positive():
    with pytest.raises(ValueError, match="prefetch must be a positive integer"):
        BackgroundBatches([], prefetch=0)


def test_augmented_batches_checks_its_arguments_before_starting(rng):
    batches = [(np.zeros((2, 784), dtype=np.float32), np.zeros(2))]
    with pytest.raises(TypeError,
                       match=r"augment must be an nnscratch\.data\.augment\.Augmentation"):
        augmented_batches(batches, {"shift": 2}, rng)
    with pytest.raises(ValueError, match="but X has 5 features"):
        augmented_batches(batches, Augmentation(shift=1.0), rng, n_features=5)


def test_blas_leaves_the_producer_a_core_and_gets_its_threads_back():
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl sets BLAS threads")

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpoolctl.threadpool_info()
                if pool["user_api"] == "blas"}

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        if not before:
            pytest.skip("no BLAS library found by threadpoolctl")
        during = []
        with BackgroundBatches(range(3), blas_threads=1) as items:
            for _ in items:
                during.append(blas_threads())
        assert during == [{1}] * 3
        assert blas_threads() == before  # restored when the items ran out
        items = BackgroundBatches(range(3), blas_threads=1)
        items.close()  # and when closed early
        assert blas_threads() == before
