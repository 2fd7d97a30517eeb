"""Training never leaves a broken model, and never passes a diverged one off in silence.

- A non-finite loss or weight restores the weights from before the failing step (full batch)
  or epoch (mini-batches) and raises, naming "iteration N" or "epoch N" and the learning rate
  as the interface calls it (``learning_rate`` in Python, ``--learning-rate`` on the CLI).
- A classifier whose fit failed is unfitted.
- A finite loss that ends over ten times where it started warns; so does training that cannot
  change the weights (0 iterations, a zero learning rate).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nnscratch import NeuralNetClassifier
from nnscratch._validation import NotFittedError
from nnscratch.classic import NeuralNet
from nnscratch.cli import main
from nnscratch.nn.layers import Dense
from nnscratch.nn.losses import MeanSquaredError
from nnscratch.nn.model import Sequential
from nnscratch.nn.optimizers import SGD
from nnscratch.nn.training import (
    LossRoseWarning,
    TrainingDivergedError,
    UntrainedWarning,
    fit,
)


@pytest.fixture
def points(rng):
    X = rng.random((40, 4))
    return X, (X[:, 0] > 0.5).astype(int)


def _weights(model: Sequential) -> list[np.ndarray]:
    return [p.value.copy() for p in model.parameters()]


def test_a_full_batch_divergence_restores_the_weights_from_before_the_failing_step():
    model = Sequential([Dense(2, 1, rng=0, dtype=np.float64)])
    X, y = np.ones((4, 2)), np.full((4, 1), 10.0)
    seen: list[list[np.ndarray]] = []

    def keep(epoch: int, logs: dict[str, float]) -> None:
        seen.append(_weights(model))

    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            TrainingDivergedError, match=r"at iteration (\d+)\. The weights from before that "
                                         r"step are restored") as caught:
        fit(model, X, y, loss=MeanSquaredError(), optimizer=SGD(model.parameters(), 1e154),
            epochs=20, batch_size=None, verbose=0, callbacks=(keep,))
    assert caught.value.epoch >= 1
    # The weights after the last iteration that ended finite, exactly.
    for now, last_good in zip(_weights(model), seen[-1], strict=True):
        np.testing.assert_array_equal(now, last_good)


def test_a_diverged_neural_net_keeps_finite_weights_and_still_predicts(points):
    X, y = points
    net = NeuralNet([8, 1])
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            TrainingDivergedError, match=r"iteration \d+.*Try a lower learning_rate \(now "
                                         r"1e\+308\)") as caught:
        net.fit(X * 1e3, y, learning_rate=1e308, n_iterations=20)
    assert "epoch" not in str(caught.value) and "clip_norm" not in str(caught.value)
    assert all(np.all(np.isfinite(p.value)) for p in net.model_.parameters())
    assert np.all(np.isin(net.predict(X), [0, 1]))


def test_a_classifier_whose_fit_diverged_is_unfitted(points):
    X, y = points
    clf = NeuralNetClassifier(hidden_layers=(8,), learning_rate=1e308, epochs=3,
                              optimizer="sgd", batch_size=8, random_state=0)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            TrainingDivergedError, match=r"at epoch \d+.*Try a lower learning_rate"):
        clf.fit(X * 1e3, y)
    assert not clf.__sklearn_is_fitted__()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clf.predict(X)
    clf.set_params(learning_rate=0.01).fit(X, y)  # and it can be fitted again
    assert clf.predict(X).shape == y.shape


def test_a_loss_that_ends_far_above_its_start_warns(points):
    X, y = points
    with pytest.warns(LossRoseWarning, match=r"the training loss rose from 0\.72\d* to .* "
                                             r"Try a lower learning_rate \(now 10000\)"):
        NeuralNet([8, 1]).fit(X, y, learning_rate=1e4, n_iterations=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ordinary run: no warning
        NeuralNet([8, 1]).fit(X, y, learning_rate=0.5, n_iterations=30)


@pytest.mark.parametrize(("options", "why"), [({"n_iterations": 0}, "0 epochs"),
                                              ({"learning_rate": 0.0}, "a learning rate of 0")])
def test_training_that_cannot_change_the_weights_warns(points, options, why):
    X, y = points
    with pytest.warns(UntrainedWarning, match=f"training with {why} leaves the model's "
                                              "weights as initialised: it is untrained"):
        NeuralNet([8, 1]).fit(X, y, **{"n_iterations": 3, **options})


# ---------------------------------------------------------------------------------------------
# The command line says the same with its own names


@pytest.fixture
def data_args(tmp_path) -> list[str]:
    from _fake_mnist import fake_arrays, write_fake_mnist

    write_fake_mnist(tmp_path / "mnist", fake_arrays())
    return ["--data-dir", str(tmp_path / "mnist"), "--no-verify", "--no-download", "--quiet",
            "--no-plots"]


@pytest.mark.parametrize(
    ("flags", "warning"),
    [
        (["--iterations", "0"], "--iterations 0: the saved model keeps its initial weights: it "
                                "is untrained"),
        (["--learning-rate", "0", "--iterations", "2"],
         "--learning-rate 0: the saved model keeps its initial weights"),
        (["--learning-rate", "1e6", "--iterations", "50"],
         "the training loss rose from"),
    ],
)
def test_cli_warns_of_an_untrained_or_diverged_model(tmp_path, data_args, capsys, flags,
                                                     warning):
    with np.errstate(over="ignore", invalid="ignore"):
        assert main(["train", *flags, "--out", str(tmp_path / "run"), *data_args]) == 0
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnscratch: warning: "), err
    assert warning in lines[0]
    if "rose" in warning:
        assert "Try a lower --learning-rate (now 1e+06)" in lines[0]
    assert (tmp_path / "run" / "model.npz").is_file()
