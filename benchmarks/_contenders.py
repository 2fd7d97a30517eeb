"""The contenders: the same work written for nnscratch, PyTorch and scikit-learn, and the NumPy
GEMM ceiling that times that work's matrix products alone.

Each contender has one method per task kind (``tutorial``, ``epoch``, ``tta``, ``inference``,
and ``cnn`` for nnscratch and PyTorch: scikit-learn has no convolutional network),
called in a worker process (see ``_worker.py``) with the task as a dict and the data already
loaded. A method builds its model, warms up (a few untimed steps on a throwaway model of
the same shapes, so one-time costs such as thread start-up and kernel selection are not timed),
times the work with ``time.perf_counter``, scores it on the test set (untimed) and returns a
dict of figures.

Fairness rules:

- the same initial weights wherever the recipe is the same: PyTorch and scikit-learn get
  nnscratch's seeded weights copied in (for the tutorial, its ``randn / sqrt(fan_in)`` draw after
  seed 42; for the 784-256-128-10 network, He-normal weights from ``build_mlp(rng=0)``);
- idiomatic code for each library: PyTorch ``nn.Sequential`` of ``nn.Linear``, a loop over
  ``torch.randperm`` index batches, ``zero_grad(set_to_none=True)``, ``backward``, ``step``;
  scikit-learn's ``MLPClassifier.fit`` / ``partial_fit`` / ``predict_proba``;
- every contender computes in the task's dtype (scikit-learn keeps float32 input as float32;
  the result records the dtype its weights actually had).

What is left out: GPUs, other libraries, data loading time (the data is in memory first).
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from _tasks import Gemm, Plan, Task, epoch_plan, plan_flops, recipe_layers, task_plan

from nnscratch import Adam, BinaryCrossEntropy, NeuralNet, SoftmaxCrossEntropy, build_mlp, fit
from nnscratch.nn._kernels import clear_matmul_layouts, matmul_layouts
from nnscratch.nn.activations import ReLU, softmax
from nnscratch.nn.conv import Conv2D, MaxPool2D
from nnscratch.nn.layers import Dense, Flatten, Reshape
from nnscratch.nn.model import Sequential, forward_in_chunks
from nnscratch.nn.optimizers import CosineDecay

SEED = 0
clock = time.perf_counter


@dataclass
class Data:
    """A task's arrays: ``X`` in the task's dtype, ``y`` as int64 class indices."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


# -- helpers shared by the contenders ---------------------------------------------------------
def mlp_weights(layers: list[int], dtype: np.dtype, init: str = "he_normal"
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` per layer of ``build_mlp(..., rng=SEED)``, W shaped (in_features, out_features):
    the initial weights every contender starts from."""
    model = build_mlp(layers[0], layers[1:-1], layers[-1], activation="relu", init=init,
                      rng=SEED, dtype=dtype)
    params = [p.value.copy() for p in model.parameters()]
    return list(zip(params[0::2], params[1::2], strict=True))


def tutorial_weights(layers: list[int], dtype: np.dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """The tutorial's initial weights (``randn(out, in) / sqrt(in)`` after seed 42), taken from an
    untrained ``NeuralNet`` so that they are exactly the ones nnscratch starts from."""
    net = NeuralNet(layers[1:], dtype=dtype)
    net.fit(np.zeros((2, layers[0]), dtype=dtype), np.array([0, 1]), n_iterations=0)
    params = [p.value.copy() for p in net.model_.parameters()]
    return list(zip(params[0::2], params[1::2], strict=True))


def cnn_model(params: dict[str, Any], dtype: np.dtype) -> Sequential:
    """The ``cnn-epoch`` network in nnscratch, seeded: ``Reshape(1, 28, 28)``, then per
    convolution ``Conv2D → ReLU → MaxPool2D(2)``, ``Flatten`` and the dense layers; He-normal
    weights drawn from one generator seeded with :data:`SEED`. PyTorch copies these."""
    rng = np.random.default_rng(SEED)
    layers: list[Any] = [Reshape((1, 28, 28))]
    for c_in, c_out, k, pad, _ in params["convolutions"]:
        layers += [Conv2D(c_in, c_out, k, padding=pad, rng=rng, dtype=dtype), ReLU(),
                   MaxPool2D(2)]
    layers.append(Flatten())
    widths = params["dense"]
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        layers.append(Dense(fan_in, fan_out, init="he_normal", rng=rng, dtype=dtype))
        if index < len(widths) - 2:
            layers.append(ReLU())
    return Sequential(layers)


def chosen_layouts() -> list[dict[str, Any]]:
    """The layout nnscratch's ``matmul`` chose for each product it timed in this process, as
    ``{"gemm": "(m, k) @ (k, n) dtype, operands C/F, result asked", "layout", "ms"}``."""
    return [{"gemm": f"{tuple(c['a'])} @ {tuple(c['b'])} {c['dtype']}, operands "
                     f"{c['a_order']}{c['b_order']}, result {c['order'] or 'any'}",
             "layout": c["layout"],
             "ms": {name: 1e3 * value for name, value in c["seconds"].items()}}
            for c in matmul_layouts()]


def rows_with_every_class(y: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` row indices, plus the first row of any class they miss."""
    first_of_each = np.unique(y, return_index=True)[1]
    return np.union1d(np.arange(min(count, y.shape[0])), first_of_each)


def inference_starts(task: dict[str, Any], n_rows: int) -> list[int]:
    """Where each inference call's batch starts in the test set (row i for batch 1)."""
    batch, calls = task["params"]["batch_size"], task["params"]["calls"]
    if batch > n_rows:
        raise ValueError(f"inference batch {batch} needs at least {batch} test rows, got {n_rows}.")
    return [(i * batch) % (n_rows - batch + 1) for i in range(calls)]


def time_calls(predict: Callable[[Any], Any], inputs: Sequence[Any], warmup: int) -> float:
    """Seconds for ``predict`` over every input, after ``warmup`` untimed calls."""
    for x in inputs[:warmup]:
        predict(x)
    start = clock()
    for x in inputs:
        predict(x)
    return clock() - start


class Curve:
    """Test accuracy against cumulative training time, one point per epoch.

    Evaluation time is excluded: the clock is read before and after each evaluation and the
    difference is subtracted from the training time.
    """

    def __init__(self, target: float, max_seconds: float, evaluate: Callable[[], float]) -> None:
        self.target, self.max_seconds, self.evaluate = target, max_seconds, evaluate
        self.seconds: list[float] = []
        self.accuracy: list[float] = []

    def start(self) -> None:
        self._start, self._evaluating = clock(), 0.0

    def end_epoch(self) -> bool:
        """Record this epoch; return True when training should stop."""
        now = clock()
        trained = now - self._start - self._evaluating
        accuracy = self.evaluate()
        self._evaluating += clock() - now
        self.seconds.append(trained)
        self.accuracy.append(accuracy)
        return accuracy >= self.target or trained >= self.max_seconds

    def result(self, samples_per_epoch: int, flops_per_epoch: float) -> dict[str, Any]:
        reached = [s for s, a in zip(self.seconds, self.accuracy, strict=True) if a >= self.target]
        epochs = len(self.seconds)
        return {
            "seconds": reached[0] if reached else None,
            "reached": bool(reached),
            "epochs": epochs,
            "train_seconds": self.seconds[-1] if self.seconds else 0.0,
            "samples": samples_per_epoch * epochs,
            "flops": flops_per_epoch * epochs,
            "accuracy": self.accuracy[-1] if self.accuracy else None,
            "curve": {"seconds": self.seconds, "accuracy": self.accuracy},
        }


def tta_setup(task: dict[str, Any], contender: str) -> tuple[dict[str, Any], int]:
    """A contender's recipe for a time-to-accuracy task and its epoch cap."""
    recipe = task["params"]["recipes"][contender]
    cap = task["params"]["max_epochs"]
    epochs = recipe["epochs"] if cap is None else min(cap, recipe["epochs"])
    if recipe.get("optimizer", "adam") != "adam":
        raise ValueError(f"{contender}: only Adam recipes are implemented, got {recipe}.")
    if recipe.get("schedule", "constant") not in ("constant", "cosine"):
        raise ValueError(f"{contender}: schedule must be 'constant' or 'cosine', got {recipe}.")
    return recipe, epochs


def _count_correct(predicted: np.ndarray, y: np.ndarray) -> int:
    return int(np.count_nonzero(np.asarray(predicted).reshape(-1) == y))


def _scores(train_correct: int | None, test_correct: int, data: Data) -> dict[str, Any]:
    n_test = data.y_test.shape[0]
    return {"accuracy": test_correct / n_test, "test_correct": test_correct, "n_test": n_test,
            "train_correct": train_correct, "n_train": data.y_train.shape[0]}


class Contender:
    """Base class: dispatches a task to the method named after its kind."""

    name = ""

    def run(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        return getattr(self, task["kind"])(task, data)

    def library_info(self) -> dict[str, Any]:
        return {}


# -- nnscratch ------------------------------------------------------------------------------------
class NNScratch(Contender):
    """nnscratch through its public API: ``NeuralNet`` for the tutorial, ``build_mlp`` + ``fit``
    for the rest, ``Sequential.forward(training=False)`` + ``softmax`` for inference."""

    name = "nnscratch"

    def run(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        # Each task chooses its layouts afresh, as in a process of its own (its warm-up makes
        # the choices), and reports only its own.
        clear_matmul_layouts()
        return super().run(task, data)

    def library_info(self) -> dict[str, Any]:
        import nnscratch

        return {"nnscratch": nnscratch.__version__}

    def tutorial(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p, dtype = task["params"], np.dtype(task["dtype"])
        net = NeuralNet(p["layers"][1:], dtype=dtype)
        # NeuralNet.fit starts again from the seeded weights, so the warm-up changes nothing.
        net.fit(data.X_train, data.y_train, learning_rate=p["learning_rate"],
                n_iterations=p["warmup_iterations"])
        start = clock()
        net.fit(data.X_train, data.y_train, learning_rate=p["learning_rate"],
                n_iterations=p["iterations"], log_every=p["iterations"])
        seconds = clock() - start
        return {
            "seconds": seconds,
            **_scores(_count_correct(net.predict(data.X_train), data.y_train),
                      _count_correct(net.predict(data.X_test), data.y_test), data),
            "compute_dtype": net.model_.dtype.name, "layouts": chosen_layouts(),
            "recipe": "NeuralNet(layers, dtype).fit(X, y, learning_rate, n_iterations)",
        }

    @staticmethod
    def _mlp(layers: list[int], dtype: np.dtype, **kwargs: Any) -> Any:
        return build_mlp(layers[0], layers[1:-1], layers[-1], rng=SEED, dtype=dtype, **kwargs)

    def epoch(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p, dtype = task["params"], np.dtype(task["dtype"])
        batch_size, loss = p["batch_size"], SoftmaxCrossEntropy()
        warm_rows = p["warmup_batches"] * batch_size
        warm = self._mlp(p["layers"], dtype, activation="relu")
        fit(warm, data.X_train[:warm_rows], data.y_train[:warm_rows], loss=loss,
            optimizer=Adam(warm.parameters(), p["learning_rate"]), epochs=1,
            batch_size=batch_size, verbose=0)
        model = self._mlp(p["layers"], dtype, activation="relu")
        optimizer = Adam(model.parameters(), p["learning_rate"])
        start = clock()
        fit(model, data.X_train, data.y_train, loss=loss, optimizer=optimizer,
            epochs=p["epochs"], batch_size=batch_size, seed=SEED, verbose=0)
        seconds = clock() - start
        logits = model.forward(data.X_test, training=False)
        return {
            "seconds": seconds,
            **_scores(None, _count_correct(np.argmax(logits, axis=1), data.y_test), data),
            "compute_dtype": model.dtype.name, "layouts": chosen_layouts(),
            "recipe": "build_mlp(784, [256, 128], 10, activation='relu', rng=0); "
                      "fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=Adam(lr=1e-3), "
                      f"epochs=1, batch_size={batch_size})",
        }

    def cnn(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p, dtype = task["params"], np.dtype(task["dtype"])
        batch_size, loss = p["batch_size"], SoftmaxCrossEntropy()
        warm_rows = p["warmup_batches"] * batch_size
        warm = cnn_model(p, dtype)
        fit(warm, data.X_train[:warm_rows], data.y_train[:warm_rows], loss=loss,
            optimizer=Adam(warm.parameters(), p["learning_rate"]), epochs=1,
            batch_size=batch_size, verbose=0)
        del warm
        model = cnn_model(p, dtype)
        optimizer = Adam(model.parameters(), p["learning_rate"])
        start = clock()
        fit(model, data.X_train, data.y_train, loss=loss, optimizer=optimizer,
            epochs=p["epochs"], batch_size=batch_size, seed=SEED, verbose=0)
        seconds = clock() - start
        logits = forward_in_chunks(model, data.X_test)
        return {
            "seconds": seconds,
            **_scores(None, _count_correct(np.argmax(logits, axis=1), data.y_test), data),
            "compute_dtype": model.dtype.name,
            "recipe": "Sequential([Reshape((1, 28, 28)), Conv2D(1, 32, 3, padding=1), ReLU(), "
                      "MaxPool2D(2), Conv2D(32, 64, 3, padding=1), ReLU(), MaxPool2D(2), "
                      "Flatten(), Dense(3136, 128), ReLU(), Dense(128, 10)]); fit(model, X, y, "
                      f"loss=SoftmaxCrossEntropy(), optimizer=Adam(lr=1e-3), epochs=1, "
                      f"batch_size={batch_size})",
        }

    def tta(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p, dtype = task["params"], np.dtype(task["dtype"])
        recipe, epochs = tta_setup(task, self.name)
        layers = recipe_layers(recipe, data.n_classes)
        binary = layers[-1] == 1
        y_fit = data.y_train.astype(dtype) if binary else data.y_train

        def build() -> tuple[Any, Adam, Any]:
            model = self._mlp(layers, dtype, activation=recipe["activation"],
                              init=recipe["init"], dropout=recipe["dropout"])
            optimizer = Adam(model.parameters(), recipe["learning_rate"],
                             weight_decay=recipe["weight_decay"])
            loss = BinaryCrossEntropy() if binary else SoftmaxCrossEntropy()
            return model, optimizer, loss

        warm_rows = p["warmup_batches"] * recipe["batch_size"]
        warm, warm_optimizer, warm_loss = build()
        fit(warm, data.X_train[:warm_rows], y_fit[:warm_rows], loss=warm_loss,
            optimizer=warm_optimizer, epochs=1, batch_size=recipe["batch_size"], verbose=0)
        model, optimizer, loss = build()

        def evaluate() -> float:
            logits = model.forward(data.X_test, training=False)
            predicted = logits.reshape(-1) > 0 if binary else np.argmax(logits, axis=1)
            return _count_correct(predicted, data.y_test) / data.y_test.shape[0]

        curve = Curve(p["target"], p["max_seconds"], evaluate)
        schedule = CosineDecay(recipe["epochs"]) if recipe["schedule"] == "cosine" else None
        curve.start()
        fit(model, data.X_train, y_fit, loss=loss, optimizer=optimizer, epochs=epochs,
            batch_size=recipe["batch_size"], schedule=schedule, seed=SEED, verbose=0,
            callbacks=(lambda epoch, logs: curve.end_epoch(),))
        n_train = data.X_train.shape[0]
        return {**curve.result(n_train, plan_flops(epoch_plan(layers, n_train,
                                                               recipe["batch_size"]))),
                "compute_dtype": model.dtype.name, "recipe": recipe}

    def inference(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p, dtype = task["params"], np.dtype(task["dtype"])
        model = self._mlp(p["layers"], dtype, activation="relu")
        X, batch = data.X_test, p["batch_size"]
        inputs = [X[s:s + batch] for s in inference_starts(task, X.shape[0])]
        seconds = time_calls(lambda x: softmax(model.forward(x, training=False)), inputs,
                             p["warmup_calls"])
        return {"seconds": seconds, "compute_dtype": model.dtype.name,
                "layouts": chosen_layouts(),
                "recipe": "softmax(model.forward(x, training=False)) "
                          "(Sequential from build_mlp; nnscratch.nn.activations.softmax)"}


# -- PyTorch -------------------------------------------------------------------------------------
class PyTorch(Contender):
    """PyTorch on the CPU, written the way its tutorials write it."""

    name = "pytorch"

    def __init__(self, threads: int) -> None:
        import torch

        self.torch = torch
        torch.set_num_threads(threads)

    def library_info(self) -> dict[str, Any]:
        torch = self.torch
        settings = {}
        for line in torch.__config__.show().splitlines():
            if "Build settings:" in line:
                pairs = (item.strip().split("=", 1) for item in line.split(":", 1)[1].split(","))
                settings = dict(pair for pair in pairs if len(pair) == 2)
        wanted = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP")
        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                "torch_build": {key: settings.get(key) for key in wanted},
                "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "torch_parallel": torch.__config__.parallel_info()}

    def _dtype(self, name: str) -> Any:
        return {"float32": self.torch.float32, "float64": self.torch.float64}[name]

    def _sequential(self, layers: list[int], activation: type, dtype: Any,
                    weights: list[tuple[np.ndarray, np.ndarray]], dropout: float = 0.0) -> Any:
        """``Linear → activation [→ Dropout]`` per hidden layer, then ``Linear``, with the given
        initial weights (W stored (in, out), so ``Linear.weight`` gets ``W.T``)."""
        nn, torch = self.torch.nn, self.torch
        modules: list[Any] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(layers)):
            modules.append(nn.Linear(fan_in, fan_out, dtype=dtype))
            if index < len(layers) - 2:
                modules.append(activation())
                if dropout > 0:
                    modules.append(nn.Dropout(dropout))
        model = nn.Sequential(*modules)
        linears = [m for m in model if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for linear, (W, b) in zip(linears, weights, strict=True):
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(torch.from_numpy(b))
        return model

    def tutorial(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        torch, nn = self.torch, self.torch.nn
        p, dtype = task["params"], np.dtype(task["dtype"])
        weights = tutorial_weights(p["layers"], dtype)
        X = torch.from_numpy(data.X_train)
        y = torch.from_numpy(data.y_train.astype(dtype)).reshape(-1, 1)
        loss_fn = nn.BCEWithLogitsLoss()

        def train(iterations: int) -> Any:
            model = self._sequential(p["layers"], nn.Sigmoid, self._dtype(task["dtype"]),
                                     weights)
            optimizer = torch.optim.SGD(model.parameters(), lr=p["learning_rate"])
            start = clock()
            for _ in range(iterations):
                loss = loss_fn(model(X), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            return model, clock() - start

        train(p["warmup_iterations"])
        model, seconds = train(p["iterations"])

        def correct(X_np: np.ndarray, y_np: np.ndarray) -> int:
            with torch.inference_mode():
                predicted = (torch.sigmoid(model(torch.from_numpy(X_np))) > 0.5).numpy()
            return _count_correct(predicted, y_np)

        return {
            "seconds": seconds,
            **_scores(correct(data.X_train, data.y_train), correct(data.X_test, data.y_test),
                      data),
            "compute_dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "recipe": "Sequential(Linear(784,196), Sigmoid(), Linear(196,1)), BCEWithLogitsLoss, "
                      "SGD(lr=0.1), full batch: zero_grad(set_to_none=True), backward, step",
        }

    def _train_epoch(self, model: Any, optimizer: Any, loss_fn: Any, X: Any, y: Any,
                     batch_size: int, generator: Any) -> None:
        """One epoch of the idiomatic loop: shuffled index batches from ``torch.randperm``."""
        order = self.torch.randperm(X.shape[0], generator=generator)
        for start in range(0, X.shape[0], batch_size):
            index = order[start:start + batch_size]
            loss = loss_fn(model(X[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def epoch(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        torch, nn = self.torch, self.torch.nn
        p, dtype = task["params"], np.dtype(task["dtype"])
        weights = mlp_weights(p["layers"], dtype)
        X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
        loss_fn, batch_size = nn.CrossEntropyLoss(), p["batch_size"]
        generator = torch.Generator().manual_seed(SEED)

        def build() -> tuple[Any, Any]:
            model = self._sequential(p["layers"], nn.ReLU, self._dtype(task["dtype"]), weights)
            return model, torch.optim.Adam(model.parameters(), lr=p["learning_rate"])

        warm_rows = p["warmup_batches"] * batch_size
        self._train_epoch(*build(), loss_fn, X[:warm_rows], y[:warm_rows], batch_size, generator)
        model, optimizer = build()
        start = clock()
        for _ in range(p["epochs"]):
            self._train_epoch(model, optimizer, loss_fn, X, y, batch_size, generator)
        seconds = clock() - start
        with torch.inference_mode():
            predicted = model(torch.from_numpy(data.X_test)).argmax(dim=1).numpy()
        return {
            "seconds": seconds, **_scores(None, _count_correct(predicted, data.y_test), data),
            "compute_dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "recipe": "Sequential(Linear, ReLU, Linear, ReLU, Linear), CrossEntropyLoss, "
                      f"Adam(lr=1e-3), randperm index batches of {batch_size}",
        }

    def _cnn(self, params: dict[str, Any], dtype: Any, weights: list[np.ndarray]) -> Any:
        """The ``cnn-epoch`` network in PyTorch, with nnscratch's initial weights (a Conv2d's
        weight has nnscratch's (out, in, kh, kw) layout; a Linear's is the transpose)."""
        nn, torch = self.torch.nn, self.torch
        modules: list[Any] = [nn.Unflatten(1, (1, 28, 28))]
        for c_in, c_out, k, pad, _ in params["convolutions"]:
            modules += [nn.Conv2d(c_in, c_out, k, padding=pad, dtype=dtype), nn.ReLU(),
                        nn.MaxPool2d(2)]
        modules.append(nn.Flatten())
        widths = params["dense"]
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            modules.append(nn.Linear(fan_in, fan_out, dtype=dtype))
            if index < len(widths) - 2:
                modules.append(nn.ReLU())
        model = nn.Sequential(*modules)
        learned = [m for m in model if isinstance(m, nn.Conv2d | nn.Linear)]
        with torch.no_grad():
            for module, W, b in zip(learned, weights[0::2], weights[1::2], strict=True):
                W = W if isinstance(module, nn.Conv2d) else W.T
                module.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
                module.bias.copy_(torch.from_numpy(b))
        return model

    def cnn(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        torch, nn = self.torch, self.torch.nn
        p, dtype = task["params"], np.dtype(task["dtype"])
        weights = [param.value.copy() for param in cnn_model(p, dtype).parameters()]
        X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
        loss_fn, batch_size = nn.CrossEntropyLoss(), p["batch_size"]
        generator = torch.Generator().manual_seed(SEED)

        def build() -> tuple[Any, Any]:
            model = self._cnn(p, self._dtype(task["dtype"]), weights)
            return model, torch.optim.Adam(model.parameters(), lr=p["learning_rate"])

        warm_rows = p["warmup_batches"] * batch_size
        self._train_epoch(*build(), loss_fn, X[:warm_rows], y[:warm_rows], batch_size, generator)
        model, optimizer = build()
        start = clock()
        for _ in range(p["epochs"]):
            self._train_epoch(model, optimizer, loss_fn, X, y, batch_size, generator)
        seconds = clock() - start
        with torch.inference_mode():
            predicted = torch.cat([model(torch.from_numpy(data.X_test[i:i + 1000])).argmax(dim=1)
                                   for i in range(0, len(data.X_test), 1000)]).numpy()
        return {
            "seconds": seconds, **_scores(None, _count_correct(predicted, data.y_test), data),
            "compute_dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "recipe": "Sequential(Unflatten, Conv2d(1,32,3,padding=1), ReLU, MaxPool2d(2), "
                      "Conv2d(32,64,3,padding=1), ReLU, MaxPool2d(2), Flatten, Linear(3136,128), "
                      "ReLU, Linear(128,10)), CrossEntropyLoss, Adam(lr=1e-3), randperm index "
                      f"batches of {batch_size}",
        }

    def tta(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        torch, nn = self.torch, self.torch.nn
        p, dtype = task["params"], np.dtype(task["dtype"])
        recipe, epochs = tta_setup(task, self.name)
        layers = recipe_layers(recipe, data.n_classes)
        binary = layers[-1] == 1
        weights = mlp_weights(layers, dtype, init=recipe["init"])
        torch.manual_seed(SEED)  # dropout masks
        X = torch.from_numpy(data.X_train)
        y = torch.from_numpy(data.y_train.astype(dtype).reshape(-1, 1) if binary
                             else data.y_train)
        X_test = torch.from_numpy(data.X_test)
        loss_fn = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(SEED)

        def build() -> tuple[Any, Any]:
            model = self._sequential(layers, nn.ReLU, self._dtype(task["dtype"]), weights,
                                     dropout=recipe["dropout"])
            optimizer = torch.optim.Adam(model.parameters(), lr=recipe["learning_rate"],
                                         weight_decay=recipe["weight_decay"])
            return model, optimizer

        warm_rows = p["warmup_batches"] * recipe["batch_size"]
        self._train_epoch(*build(), loss_fn, X[:warm_rows], y[:warm_rows],
                          recipe["batch_size"], generator)
        model, optimizer = build()
        schedule = (torch.optim.lr_scheduler.LambdaLR(optimizer, CosineDecay(recipe["epochs"]))
                    if recipe["schedule"] == "cosine" else None)

        def evaluate() -> float:
            model.eval()
            with torch.inference_mode():
                logits = model(X_test)
                predicted = (logits.reshape(-1) > 0) if binary else logits.argmax(dim=1)
            model.train()
            return _count_correct(predicted.numpy(), data.y_test) / data.y_test.shape[0]

        curve = Curve(p["target"], p["max_seconds"], evaluate)
        curve.start()
        for _ in range(epochs):
            self._train_epoch(model, optimizer, loss_fn, X, y, recipe["batch_size"], generator)
            if schedule is not None:
                schedule.step()
            if curve.end_epoch():
                break
        n_train = data.X_train.shape[0]
        return {**curve.result(n_train, plan_flops(epoch_plan(layers, n_train,
                                                               recipe["batch_size"]))),
                "compute_dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
                "recipe": recipe}

    def inference(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        torch, nn = self.torch, self.torch.nn
        p, dtype = task["params"], np.dtype(task["dtype"])
        model = self._sequential(p["layers"], nn.ReLU, self._dtype(task["dtype"]),
                                 mlp_weights(p["layers"], dtype))
        model.eval()
        X, batch = torch.from_numpy(data.X_test), p["batch_size"]
        inputs = [X[s:s + batch] for s in inference_starts(task, X.shape[0])]
        with torch.inference_mode():
            seconds = time_calls(lambda x: torch.softmax(model(x), dim=1), inputs,
                                 p["warmup_calls"])
        return {"seconds": seconds,
                "compute_dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
                "recipe": "model.eval(); with torch.inference_mode(): "
                          "torch.softmax(model(x), dim=1)"}


# -- scikit-learn ---------------------------------------------------------------------------------
class ScikitLearn(Contender):
    """scikit-learn's ``MLPClassifier``. Where the recipe is shared, a short untimed ``fit``
    creates the estimator's state and nnscratch's initial weights are then copied into
    ``coefs_`` / ``intercepts_``; the timed ``fit`` continues from them (``warm_start=True``)."""

    name = "sklearn"

    def __init__(self) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        self.MLPClassifier = MLPClassifier
        # max_iter is the number of epochs we ask for, not a convergence failure.
        warnings.simplefilter("ignore", ConvergenceWarning)

    def library_info(self) -> dict[str, Any]:
        import sklearn

        return {"sklearn": sklearn.__version__}

    @staticmethod
    def _set_weights(clf: Any, weights: list[tuple[np.ndarray, np.ndarray]], dtype: np.dtype
                     ) -> None:
        if [c.shape for c in clf.coefs_] != [W.shape for W, _ in weights]:
            raise RuntimeError("MLPClassifier's layer shapes differ from nnscratch's.")
        clf.coefs_ = [W.astype(dtype, copy=True) for W, _ in weights]
        clf.intercepts_ = [b.astype(dtype, copy=True) for _, b in weights]

    @staticmethod
    def _no_early_stop() -> dict[str, Any]:
        # Train exactly the epochs asked for: no tolerance-based stopping.
        return {"tol": 0.0, "n_iter_no_change": 10**9, "early_stopping": False}

    def tutorial(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p, dtype = task["params"], np.dtype(task["dtype"])
        n_samples = data.X_train.shape[0]
        clf = self.MLPClassifier(
            hidden_layer_sizes=tuple(p["layers"][1:-1]), activation="logistic", solver="sgd",
            alpha=0.0, batch_size=n_samples, learning_rate="constant",
            learning_rate_init=p["learning_rate"], momentum=0.0, nesterovs_momentum=False,
            max_iter=p["warmup_iterations"], shuffle=False, random_state=SEED,
            **self._no_early_stop(),
        )
        clf.fit(data.X_train, data.y_train)  # untimed: creates the state, warms up
        self._set_weights(clf, tutorial_weights(p["layers"], dtype), dtype)
        clf.set_params(max_iter=p["iterations"], warm_start=True)
        start = clock()
        clf.fit(data.X_train, data.y_train)
        seconds = clock() - start
        return {
            "seconds": seconds,
            **_scores(_count_correct(clf.predict(data.X_train), data.y_train),
                      _count_correct(clf.predict(data.X_test), data.y_test), data),
            "compute_dtype": clf.coefs_[0].dtype.name,
            "recipe": "MLPClassifier(hidden_layer_sizes=(196,), activation='logistic', "
                      "solver='sgd', momentum=0, alpha=0, batch_size=n_samples, "
                      "learning_rate_init=0.1, shuffle=False), tutorial initial weights",
        }

    def epoch(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p, dtype = task["params"], np.dtype(task["dtype"])
        batch_size = p["batch_size"]
        clf = self.MLPClassifier(
            hidden_layer_sizes=tuple(p["layers"][1:-1]), activation="relu", solver="adam",
            alpha=0.0, batch_size=batch_size, learning_rate_init=p["learning_rate"],
            max_iter=p["epochs"], shuffle=True, random_state=SEED, **self._no_early_stop(),
        )
        warm = rows_with_every_class(data.y_train, p["warmup_batches"] * batch_size)
        clf.fit(data.X_train[warm], data.y_train[warm])
        self._set_weights(clf, mlp_weights(p["layers"], dtype), dtype)
        clf.set_params(warm_start=True)
        start = clock()
        clf.fit(data.X_train, data.y_train)
        seconds = clock() - start
        return {
            "seconds": seconds,
            **_scores(None, _count_correct(clf.predict(data.X_test), data.y_test), data),
            "compute_dtype": clf.coefs_[0].dtype.name,
            "recipe": "MLPClassifier(hidden_layer_sizes=(256, 128), solver='adam', alpha=0, "
                      f"batch_size={batch_size}, learning_rate_init=1e-3, max_iter=1, "
                      "shuffle=True), nnscratch's initial weights",
        }

    def tta(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p = task["params"]
        recipe, epochs = tta_setup(task, self.name)
        layers = recipe_layers(recipe, data.n_classes)
        classes = np.unique(data.y_train)

        def build() -> Any:
            return self.MLPClassifier(
                hidden_layer_sizes=tuple(recipe["hidden"]), activation=recipe["activation"],
                solver="adam", alpha=recipe["alpha"], batch_size=recipe["batch_size"],
                learning_rate_init=recipe["learning_rate"], shuffle=True, random_state=SEED,
            )

        warm_rows = p["warmup_batches"] * recipe["batch_size"]
        build().partial_fit(data.X_train[:warm_rows], data.y_train[:warm_rows], classes=classes)
        clf = build()
        curve = Curve(p["target"], p["max_seconds"],
                      lambda: clf.score(data.X_test, data.y_test))
        curve.start()
        for _ in range(epochs):
            clf.partial_fit(data.X_train, data.y_train, classes=classes)
            if curve.end_epoch():
                break
        n_train = data.X_train.shape[0]
        return {**curve.result(n_train, plan_flops(epoch_plan(layers, n_train,
                                                               recipe["batch_size"]))),
                "compute_dtype": clf.coefs_[0].dtype.name, "recipe": recipe}

    def inference(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p, dtype = task["params"], np.dtype(task["dtype"])
        clf = self.MLPClassifier(hidden_layer_sizes=tuple(p["layers"][1:-1]), activation="relu",
                                 solver="adam", max_iter=1, random_state=SEED)
        warm = rows_with_every_class(data.y_train, 256)
        clf.fit(data.X_train[warm], data.y_train[warm])
        self._set_weights(clf, mlp_weights(p["layers"], dtype), dtype)
        X, batch = data.X_test, p["batch_size"]
        inputs = [X[s:s + batch] for s in inference_starts(task, X.shape[0])]
        seconds = time_calls(clf.predict_proba, inputs, p["warmup_calls"])
        return {"seconds": seconds, "compute_dtype": clf.coefs_[0].dtype.name,
                "recipe": "clf.predict_proba(x) (it validates x; there is no public logits "
                          "path)"}


# -- the tutorial's own code ---------------------------------------------------------------------
class TutorialCode(Contender):
    """The tutorial's own NumPy code, in its feature-major layout, for the tutorial tasks only.

    As the tutorial writes it: ``W`` stored ``(out, in)``, ``b`` as ``(out, 1)``, the
    activations ``(features, n_samples)`` starting from ``X.T``, a sigmoid on every layer, the
    cost from ``np.log`` of the probabilities every iteration, gradients ``dZ @ A.T / m``, and
    no input gradient for the first layer; in the task's dtype. Its initial weights are
    nnscratch's (the same ``randn(out, in) / sqrt(in)`` draw after seed 42).
    """

    name = "tutorial-code"

    @staticmethod
    def _train(X: np.ndarray, y: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray],
               learning_rate: float, iterations: int) -> None:
        A0, Y, m = X.T, y.reshape(1, -1), X.shape[0]
        for _ in range(iterations):
            activations = [A0]
            for W, b in zip(weights, biases, strict=True):
                activations.append(1 / (1 + np.exp(-(W @ activations[-1] + b))))
            A = activations[-1]
            float(-np.mean(Y * np.log(A) + (1 - Y) * np.log(1 - A)))  # the logged cost
            dZ = A - Y
            for layer in reversed(range(len(weights))):
                dW = dZ @ activations[layer].T / m
                db = dZ.sum(axis=1, keepdims=True) / m
                if layer > 0:
                    a = activations[layer]
                    dZ = (weights[layer].T @ dZ) * a * (1 - a)
                weights[layer] = weights[layer] - learning_rate * dW
                biases[layer] = biases[layer] - learning_rate * db

    @staticmethod
    def _predict(X: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray]
                 ) -> np.ndarray:
        A = X.T
        for W, b in zip(weights, biases, strict=True):
            A = 1 / (1 + np.exp(-(W @ A + b)))
        return (A > 0.5).astype(np.int64).reshape(-1)

    @staticmethod
    def initial(layers: list[int], dtype: np.dtype) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """nnscratch's initial weights in the tutorial's storage: ``W`` as ``(out, in)``, ``b``
        as ``(out, 1)``, fresh arrays on every call."""
        pairs = tutorial_weights(layers, dtype)
        return ([np.ascontiguousarray(W.T) for W, _ in pairs],
                [b.reshape(-1, 1).copy() for _, b in pairs])

    def tutorial(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        p, dtype = task["params"], np.dtype(task["dtype"])
        y = data.y_train.astype(dtype)
        self._train(data.X_train, y, *self.initial(p["layers"], dtype), p["learning_rate"],
                    p["warmup_iterations"])
        weights, biases = self.initial(p["layers"], dtype)
        start = clock()
        self._train(data.X_train, y, weights, biases, p["learning_rate"], p["iterations"])
        seconds = clock() - start
        return {
            "seconds": seconds,
            **_scores(_count_correct(self._predict(data.X_train, weights, biases), data.y_train),
                      _count_correct(self._predict(data.X_test, weights, biases), data.y_test),
                      data),
            "compute_dtype": weights[0].dtype.name,
            "recipe": "the tutorial's loop: A = 1 / (1 + exp(-(W @ A + b))) with W (out, in) "
                      "and A (features, n); cost from np.log; dW = dZ @ A.T / m",
        }


# -- the NumPy GEMM ceiling --------------------------------------------------------------------
#: The layouts one product C = A B can be asked of BLAS in: A stored row by row ("C") or as the
#: transpose of a row-major array ("F"), the same for B, and C written row by row or column by
#: column (as C^T = B^T A^T). nnscratch's Dense stores x @ W as "CC>C" (x.T @ G as "FC>C",
#: G @ W.T as "CF>C"); the tutorial's feature-major code computes x @ W as "CF>F".
GEMM_LAYOUTS = tuple(f"{a}{b}>{c}" for a in "CF" for b in "CF" for c in "CF")
#: nnscratch's own storage of each kind of product (see ``_tasks.Gemm``), for the report.
NNSCRATCH_STORAGE = {"nn": "CC", "tn": "FC", "nt": "CF"}


def gemm_operands(gemm: Gemm, layout: str, dtype: np.dtype, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, out)`` such that ``np.matmul(a, b, out=out)`` computes one product of ``gemm``
    in ``layout`` (one of :data:`GEMM_LAYOUTS`)."""
    _, m, k, n = gemm

    def stored(rows: int, cols: int, order: str) -> np.ndarray:
        if order == "F":
            return rng.standard_normal((cols, rows)).astype(dtype).T
        return rng.standard_normal((rows, cols)).astype(dtype)

    a, b = stored(m, k, layout[0]), stored(k, n, layout[1])
    if layout[-1] == "F":  # C^T = B^T A^T, into a row-major (n, m) array
        return b.T, a.T, np.empty((n, m), dtype=dtype)
    return a, b, np.empty((m, n), dtype=dtype)


class GemmCeiling(Contender):
    """The task's matrix products alone, each in the fastest of its eight layouts, with
    ``np.matmul(a, b, out=c)``, in the task's dtype: the floor of any code that computes them.

    For each product, every layout of :data:`GEMM_LAYOUTS` is timed (one warm-up, then as many
    calls as fill a sixteenth of ``block_seconds``, twice, the faster kept) and the fastest is
    kept. Each distinct group of products, in those layouts, is then run once to warm up and in
    3 blocks of as many rounds as fill ``block_seconds``; the median block gives the time of
    one round, multiplied by how many times the task performs that group. The result names the
    winning layout of every product (``layouts``).
    """

    name = "numpy-gemm"

    def __init__(self, block_seconds: float) -> None:
        self.block_seconds = block_seconds

    @staticmethod
    def _calls_per_second_block(call: Callable[[], Any], seconds: float) -> float:
        """Seconds per call: the faster of two blocks of calls filling ``seconds`` each."""
        call()
        start = clock()
        call()
        calls = max(1, math.ceil(seconds / max(clock() - start, 1e-7)))
        best = math.inf
        for _ in range(2):
            start = clock()
            for _ in range(calls):
                call()
            best = min(best, (clock() - start) / calls)
        return best

    def _fastest_layout(self, gemm: Gemm, dtype: np.dtype, rng: np.random.Generator
                        ) -> tuple[str, dict[str, float]]:
        seconds = {}
        for layout in GEMM_LAYOUTS:
            a, b, out = gemm_operands(gemm, layout, dtype, rng)
            seconds[layout] = self._calls_per_second_block(
                lambda a=a, b=b, out=out: np.matmul(a, b, out=out), self.block_seconds / 16)
        return min(seconds, key=seconds.__getitem__), seconds

    def _round_seconds(self, gemms: list[Gemm], dtype: np.dtype
                       ) -> tuple[float, list[dict[str, Any]]]:
        rng = np.random.default_rng(SEED)
        operands, layouts = [], []
        for gemm in gemms:
            layout, seconds = self._fastest_layout(gemm, dtype, rng)
            kind, m, k, n = gemm
            ours = f"{NNSCRATCH_STORAGE[kind]}>C"
            layouts.append({"gemm": f"{kind} {m}x{k}x{n}", "fastest": layout,
                            "nnscratch_layout": ours,
                            "fastest_over_nnscratch": seconds[layout] / seconds[ours],
                            "ms": {name: 1e3 * value for name, value in seconds.items()}})
            operands.append(gemm_operands(gemm, layout, dtype, rng))

        def one_round() -> None:
            for a, b, out in operands:
                np.matmul(a, b, out=out)

        one_round()
        start = clock()
        one_round()
        estimate = max(clock() - start, 1e-7)
        rounds = max(1, math.ceil(self.block_seconds / estimate))
        blocks = []
        for _ in range(3):
            start = clock()
            for _ in range(rounds):
                one_round()
            blocks.append((clock() - start) / rounds)
        return statistics.median(blocks), layouts

    def _run(self, task: dict[str, Any], data: Data) -> dict[str, Any]:
        plan = task_plan_for(task, data)
        dtype = np.dtype(task["dtype"])
        seconds, layouts = 0.0, []
        for times, gemms in plan:
            round_seconds, group_layouts = self._round_seconds(gemms, dtype)
            seconds += times * round_seconds
            layouts += group_layouts
        return {"seconds": seconds, "compute_dtype": dtype.name, "layouts": layouts,
                "recipe": "np.matmul(a, b, out=c) on the task's GEMM shapes, each in its "
                          "fastest of 8 layouts, timed alone"}

    tutorial = epoch = inference = cnn = _run


def task_plan_for(task: dict[str, Any], data: Data) -> Plan:
    """The GEMM plan of a task on the data actually loaded."""
    return task_plan(Task(**task), data.X_train.shape[0])


def work_figures(task: dict[str, Any], data: Data) -> dict[str, float]:
    """Samples processed and GEMM FLOPs of a task with a fixed amount of work (time-to-accuracy
    results carry their own)."""
    p, n_train = task["params"], data.X_train.shape[0]
    samples = {"tutorial": lambda: n_train * p["iterations"],
               "epoch": lambda: n_train * p["epochs"],
               "cnn": lambda: n_train * p["epochs"],
               "inference": lambda: p["calls"] * p["batch_size"]}[task["kind"]]()
    return {"samples": samples, "flops": plan_flops(task_plan_for(task, data))}


def make_contender(name: str, threads: int, block_seconds: float) -> Contender:
    """The contender called ``name``; importing its library happens here."""
    if name == "nnscratch":
        return NNScratch()
    if name == "pytorch":
        return PyTorch(threads)
    if name == "sklearn":
        return ScikitLearn()
    if name == GemmCeiling.name:
        return GemmCeiling(block_seconds)
    if name == TutorialCode.name:
        return TutorialCode()
    raise ValueError(f"unknown contender {name!r}.")

