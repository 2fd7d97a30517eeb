"""The benchmark's tasks: what each one trains or predicts, at full and at quick size, and the
matrix products (GEMMs) it performs.

Every task is plain data (a :class:`Task` with a JSON-serialisable ``params`` dict), so the
orchestrator can hand it to a worker process and write it into ``results.json`` unchanged. The
GEMM lists below are the single source of the FLOP counts and of the shapes that the NumPy GEMM
ceiling times, so the two can never disagree.

One task is a convolutional network (``cnn-epoch``, issue 20); its GEMMs are those of im2col:
each convolution is one product of its weights ``(out_channels, in_channels * kh * kw)`` with
the input's windows unfolded into columns ``(in_channels * kh * kw, n * out_h * out_w)``.

What is left out: any network other than these on MNIST.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

from nnscratch.runs.recipes import RECIPES

#: One matrix product: (layout, m, k, n) for an (m, k) @ (k, n) product. The layout says how the
#: operands are stored, as nnscratch's Dense layer has them: "nn" is ``x @ W``, "tn" is
#: ``x.T @ G`` (weight gradient, x stored (k, m)), "nt" is ``G @ W.T`` (input gradient, W stored
#: (n, k)).
Gemm = tuple[str, int, int, int]
#: A GEMM plan: (times, gemms) pairs; the work performs each group of GEMMs ``times`` times.
Plan = list[tuple[int, list[Gemm]]]

CONTENDERS = ("nnscratch", "pytorch", "sklearn")
#: The pseudo-contender that times the task's GEMMs alone with np.matmul.
CEILING = "numpy-gemm"
#: The pseudo-contender that runs the tutorial's own feature-major NumPy code (tutorial tasks).
TUTORIAL_CODE = "tutorial-code"
MLP_LAYERS = [784, 256, 128, 10]
TUTORIAL_LAYERS = [784, 196, 1]
#: The ``cnn-epoch`` network: Conv2D(1,32,3,padding=1)-ReLU-MaxPool2D(2)-Conv2D(32,64,3,
#: padding=1)-ReLU-MaxPool2D(2)-Flatten-Dense(3136,128)-ReLU-Dense(128,10), on 28x28 images.
#: Each convolution: (in_channels, out_channels, kernel, padding, image side before it).
CNN_CONVS = [(1, 32, 3, 1, 28), (32, 64, 3, 1, 14)]
CNN_DENSE = [64 * 7 * 7, 128, 10]


@dataclass(frozen=True)
class Task:
    """One unit of work that every contender performs.

    Attributes
    ----------
    key : str
        Short unique name, e.g. ``"epoch-b128"``.
    kind : {"tutorial", "epoch", "tta", "inference"}
        Which method of a contender runs it.
    title : str
        One line for the table.
    dataset : {"binary", "ten"}
        MNIST 1 vs 2 (labels 0/1), or all ten digits.
    dtype : {"float32", "float64"}
    params : dict
        Kind-specific settings (sizes, learning rate, recipes ...), JSON-serialisable.
    """

    key: str
    kind: str
    title: str
    dataset: str
    dtype: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the GEMMs of a multi-layer perceptron ---------------------------------------------------
def forward_gemms(layers: list[int], batch: int) -> list[Gemm]:
    """``x @ W`` for each layer of widths ``layers`` on a batch of ``batch`` rows."""
    return [("nn", batch, fan_in, fan_out) for fan_in, fan_out in itertools.pairwise(layers)]


def training_gemms(layers: list[int], batch: int) -> list[Gemm]:
    """The GEMMs of one training step: forward, weight gradients ``x.T @ G`` for every layer,
    and input gradients ``G @ W.T`` for every layer but the first (whose input is the data)."""
    pairs = list(itertools.pairwise(layers))
    weight_grads = [("tn", fan_in, batch, fan_out) for fan_in, fan_out in pairs]
    input_grads = [("nt", batch, fan_out, fan_in) for fan_in, fan_out in pairs[1:]]
    return forward_gemms(layers, batch) + weight_grads + input_grads


def cnn_training_gemms(batch: int) -> list[Gemm]:
    """The GEMMs of one training step of the ``cnn-epoch`` network on ``batch`` images.

    Per convolution with ``K = in_channels * k * k`` and ``N = batch * side * side`` output
    pixels (padding 1 keeps the side): the forward ``W (out, K) @ cols (K, N)``, the weight
    gradient ``G (out, N) @ cols.T`` and, for every convolution but the first (whose input is
    the data), the input gradient ``W.T (K, out) @ G (out, N)`` before it is folded back into
    pixels. Then the dense layers as in :func:`training_gemms`; the input gradient of the first
    dense layer flows back into the convolutions, so it is kept.
    """
    gemms: list[Gemm] = []
    for index, (c_in, c_out, k, _, side) in enumerate(CNN_CONVS):
        K, N = c_in * k * k, batch * side * side
        gemms += [("nn", c_out, K, N), ("nt", c_out, N, K)]
        if index:
            gemms.append(("tn", K, c_out, N))
    dense = training_gemms(CNN_DENSE, batch)
    return gemms + dense + [("nt", batch, CNN_DENSE[1], CNN_DENSE[0])]


def epoch_plan(layers: list[int], n_samples: int, batch_size: int) -> Plan:
    """The GEMMs of one epoch of mini-batches, the last one possibly smaller."""
    full, rest = divmod(n_samples, batch_size)
    plan: Plan = []
    if full:
        plan.append((full, training_gemms(layers, batch_size)))
    if rest:
        plan.append((1, training_gemms(layers, rest)))
    return plan


def plan_flops(plan: Plan) -> float:
    """Floating-point operations of a plan: 2 m k n per GEMM."""
    return float(sum(times * sum(2 * m * k * n for _, m, k, n in gemms) for times, gemms in plan))


def task_plan(task: Task, n_train: int) -> Plan:
    """The GEMMs of a task's timed work (not defined for time-to-accuracy, whose amount of
    work depends on each contender's recipe and on when it reaches the target)."""
    p = task.params
    if task.kind == "tutorial":
        return [(p["iterations"], training_gemms(p["layers"], n_train))]
    if task.kind == "epoch":
        return [(times, gemms) for _ in range(p["epochs"])
                for times, gemms in epoch_plan(p["layers"], n_train, p["batch_size"])]
    if task.kind == "inference":
        return [(p["calls"], forward_gemms(p["layers"], p["batch_size"]))]
    if task.kind == "cnn":
        full, rest = divmod(n_train, p["batch_size"])
        plan = [(full * p["epochs"], cnn_training_gemms(p["batch_size"]))] if full else []
        return plan + ([(p["epochs"], cnn_training_gemms(rest))] if rest else [])
    raise ValueError(f"task {task.key!r} of kind {task.kind!r} has no fixed GEMM plan.")


def recipe_layers(recipe: dict[str, Any], n_classes: int) -> list[int]:
    """Layer widths of a time-to-accuracy recipe: one logit for two classes."""
    return [784, *recipe["hidden"], 1 if n_classes == 2 else n_classes]


# -- recipes for time to accuracy -------------------------------------------------------------
def _from_nnscratch_recipe(name: str) -> dict[str, Any]:
    """A time-to-accuracy recipe from one of nnscratch's named training recipes."""
    s = RECIPES[name].settings
    return {
        "source": f"nnscratch.runs.recipes.RECIPES[{name!r}]",
        "hidden": list(s["layers"]), "activation": s["activation"], "dropout": s["dropout"],
        "optimizer": s["optimizer"], "learning_rate": s["learning_rate"],
        "weight_decay": s["weight_decay"], "batch_size": s["batch_size"],
        "schedule": s["schedule"], "epochs": s["epochs"], "init": "he_normal",
    }


def default_recipes() -> dict[str, dict[str, dict[str, Any]]]:
    """Each contender's recipe per time-to-accuracy task.

    nnscratch uses its own tested recipes; PyTorch runs the same recipe (same initial weights,
    dropout, Adam and cosine schedule), since a recipe is maths, not a library. scikit-learn's
    ``MLPClassifier`` has neither dropout nor schedules, so it gets its own: Adam at a constant
    learning rate with its default L2 penalty ``alpha=1e-4`` and its own Glorot initialisation.
    ``epochs`` is the cap (and the length of the cosine schedule where there is one).
    """
    binary = _from_nnscratch_recipe("binary-fast")
    ten = _from_nnscratch_recipe("mnist10")
    return {
        "tta-binary": {
            "nnscratch": binary,
            "pytorch": {**binary, "source": "the nnscratch recipe, in PyTorch"},
            "sklearn": {
                "source": "MLPClassifier, Adam, constant learning rate",
                "hidden": [256, 128], "activation": "relu", "alpha": 1e-4,
                "learning_rate": 1e-3, "batch_size": 64, "epochs": 20,
            },
        },
        "tta-ten": {
            "nnscratch": ten,
            "pytorch": {**ten, "source": "the nnscratch recipe, in PyTorch"},
            "sklearn": {
                "source": "MLPClassifier, Adam, constant learning rate",
                "hidden": [512, 256], "activation": "relu", "alpha": 1e-4,
                "learning_rate": 1e-3, "batch_size": 128, "epochs": 30,
            },
        },
    }


# -- the task list ------------------------------------------------------------------------------
def build_tasks(quick: bool, recipe_overrides: dict[str, Any] | None = None) -> list[Task]:
    """Every task, at full size or (``quick``) at a size that only proves the code paths work.

    Quick mode keeps every task, contender and code path but trains on the first few thousand
    rows for a few iterations or epochs; its figures say nothing about speed.
    """
    tutorial = {"layers": TUTORIAL_LAYERS, "learning_rate": 0.1, "warmup_iterations": 2,
                "iterations": 20 if quick else 1000, "n_train": 1000 if quick else None}
    epoch = {"layers": MLP_LAYERS, "learning_rate": 1e-3, "epochs": 1, "warmup_batches": 5,
             "n_train": 2048 if quick else None}
    recipes = default_recipes()
    for key, by_contender in (recipe_overrides or {}).items():
        if key not in recipes:
            raise ValueError(f"--recipes names task {key!r}; known: {sorted(recipes)}.")
        for contender, changes in by_contender.items():
            if contender not in recipes[key]:
                raise ValueError(f"--recipes names contender {contender!r} under {key!r}; "
                                 f"known: {sorted(recipes[key])}.")
            recipes[key][contender] = {**recipes[key][contender], **changes}
    tta_common = {"warmup_batches": 3, "max_epochs": 2 if quick else None,
                  "max_seconds": 30 if quick else 900}
    # The training rows only let scikit-learn's estimator be created; the test rows are the input.
    inference = {"layers": MLP_LAYERS, "n_train": 1000}
    cnn = {"convolutions": [list(conv) for conv in CNN_CONVS], "dense": CNN_DENSE,
           "learning_rate": 1e-3, "epochs": 1, "batch_size": 128, "warmup_batches": 2,
           "n_train": 512 if quick else None, "n_test": 500 if quick else None}
    return [
        Task("tutorial-float64", "tutorial", "tutorial recipe, 1 vs 2, float64", "binary",
             "float64", dict(tutorial)),
        Task("tutorial-float32", "tutorial", "tutorial recipe, 1 vs 2, float32", "binary",
             "float32", dict(tutorial)),
        Task("epoch-b128", "epoch", "one epoch, ten digits, batch 128", "ten", "float32",
             {**epoch, "batch_size": 128}),
        Task("epoch-b512", "epoch", "one epoch, ten digits, batch 512", "ten", "float32",
             {**epoch, "batch_size": 512}),
        Task("tta-binary", "tta", "time to >= 99.5% test, 1 vs 2", "binary", "float32",
             {**tta_common, "target": 0.995, "n_train": 1000 if quick else None,
              "recipes": copy.deepcopy(recipes["tta-binary"])}),
        Task("tta-ten", "tta", "time to >= 98.0% test, ten digits", "ten", "float32",
             {**tta_common, "target": 0.98, "n_train": 1000 if quick else None,
              "n_test": 1000 if quick else None, "recipes": copy.deepcopy(recipes["tta-ten"])}),
        Task("inference-b1", "inference", "inference, batch 1", "ten", "float32",
             {**inference, "batch_size": 1, "calls": 100 if quick else 1000,
              "warmup_calls": 20}),
        Task("inference-b10000", "inference", "inference, batch 10,000", "ten", "float32",
             {**inference, "batch_size": 10_000, "calls": 2 if quick else 10,
              "warmup_calls": 1}),
        Task("cnn-epoch", "cnn", "one epoch of a small CNN, ten digits, batch 128", "ten",
             "float32", cnn),
    ]


#: Groups accepted by ``--tasks`` besides the task keys themselves.
TASK_GROUPS = {
    "tutorial": ("tutorial-float64", "tutorial-float32"),
    "epoch": ("epoch-b128", "epoch-b512"),
    "tta": ("tta-binary", "tta-ten"),
    "inference": ("inference-b1", "inference-b10000"),
    "cnn": ("cnn-epoch",),
}
#: The contenders that have no convolutional network, and so skip the ``cnn`` tasks.
NO_CNN = {"sklearn": "scikit-learn has no convolutional network; it skips cnn-epoch"}
