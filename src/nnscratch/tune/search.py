"""Hyper-parameter search on Optuna: ``nnscratch tune``.

A study is a set of trials; each trial trains one recipe's network with settings drawn from the
search space (:mod:`nnscratch.tune.space`) on the training set minus a fixed, stratified
validation split, and reports the validation accuracy after every epoch so that the pruner can
stop it early. The test set is never seen during the search: when the trials are done, the best
settings are trained once on the whole training set, evaluated once on the test set and written
as an ordinary run folder (``best/``, through :func:`nnscratch.runs.write_run`), beside
``best.toml``, which ``nnscratch train --config`` reproduces.

The study lives in a database that Optuna manages: by default a SQLite file in the tune folder,
or any SQLAlchemy URL (``postgresql+psycopg://user@host/db``), which lets every machine run the
same command and share one study. Running the command again adds trials to the same study.
Optuna's heartbeat marks the trial of a worker that died (SIGKILL, a lost machine) as failed
once its heartbeat stops, and :class:`optuna.storages.RetryFailedTrialCallback` queues it again
with the same settings. ``--jobs N`` starts N worker processes on this machine, each with its
BLAS pinned to its share of the cores.

The tune folder holds ``study.db`` (with the default storage), ``tune.toml`` (the study's
recipe, digits, space and storage, without a password), ``trials.csv``, the plots
(``optimization_history.png``, ``param_importances.png``, ``accuracy_vs_learning_rate.png``),
``best.toml`` and ``best/``.

What is left out: multi-objective search (accuracy against time), and the tutorial recipe,
whose full-batch training has no epochs to prune at.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import multiprocessing
import os
import re
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch import _signals, runs
from nnscratch._atomic import atomic_write
from nnscratch._memory import MemoryEstimate, available_memory, format_bytes, training_bytes
from nnscratch.runs.recipes import RECIPES, Recipe, get_recipe, train_recipe
from nnscratch.tune.space import Space, SpaceError, default_space, parse_space

if TYPE_CHECKING:
    import optuna

    from nnscratch.data import ImageDataset

#: The share of each class held out of the training set to score the trials.
VALIDATION_FRACTION = 0.1
#: Seeds the validation split, which is the same for every trial of every study.
SPLIT_SEED = 0
#: Failed trials (a dead worker's) are queued again this many times at most.
MAX_RETRY = 2
#: Connections tried while another worker creates a new database's tables.
_CREATE_ATTEMPTS = 5
#: The samplers and pruners, by option name.
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
#: Trials shown in the table of the best.
TOP = 10
#: States that end a trial (Optuna's names).
FINISHED = ("COMPLETE", "PRUNED", "FAIL")
#: A study name is a name, and the default tune folder runs/tune/NAME: letters, digits, ``.``,
#: ``_`` and ``-``, starting with a letter or digit (so no ``..``, ``/`` or absolute path).
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: The longest --timeout: a year of seconds (``inf`` would never end).
MAX_TIMEOUT = 365 * 24 * 3600
#: The sampler seeds, as train's: 0 .. 2**32 - 1 (worker i gets SEED + i, wrapped).
MAX_SEED = 2**32 - 1


class TuneError(ValueError):
    """A problem with the tune command's input that the user can fix."""


@dataclass
class TuneOptions:
    """What ``nnscratch tune`` was asked to do (the command-line flags)."""

    recipe: str = "mnist10"
    dataset: str | None = None
    digits: Any = None
    space: str | None = None
    out: str | None = None
    trials: int | None = None
    timeout: float | None = None
    jobs: int = 1
    study: str | None = None
    storage: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None
    heartbeat: int = 30
    final: bool = True
    plots: bool = True
    data_dir: str | None = None
    download: bool = True
    verify: bool = True
    quiet: bool = False


@dataclass
class _Plan:
    """The checked options, before any work: everything a worker process needs."""

    recipe: Recipe
    settings: dict[str, Any]
    space: Space
    study: str
    out: Path
    storage: str
    options: TuneOptions
    identity: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Checking the options


def plan(options: TuneOptions) -> _Plan:
    """Check every option and the search space; nothing is written or loaded yet.

    Raises
    ------
    TuneError
        Naming the option (or the space file's setting) and the fix.
    """
    from nnscratch.data import get_source, parse_classes

    try:
        recipe = get_recipe(options.recipe)
    except ValueError as error:
        raise TuneError(f"--recipe: {error}") from None
    if recipe.kind not in ("mlp", "cnn"):
        raise TuneError(
            f"--recipe {recipe.name}: the tutorial recipe trains full-batch without epochs to "
            f"prune at; tune a mini-batch recipe ({', '.join(_mlp_recipes())})."
        )
    settings = {"recipe": recipe.name, **recipe.settings}
    if options.dataset is not None:
        try:
            get_source(options.dataset)
        except ValueError as error:
            raise TuneError(f"--dataset: {error}") from None
        settings["dataset"] = options.dataset
    if options.digits is not None:
        try:
            settings["digits"] = list(parse_classes(options.digits, settings["dataset"]))
        except (TypeError, ValueError) as error:
            flag = "--digits" if settings["dataset"] == "mnist" else "--classes"
            raise TuneError(f"{flag}: {error}") from None
    space = _read_space(options.space, recipe)
    _check_counts(options)
    if options.sampler == "grid":
        try:
            space.grid()
        except SpaceError as error:
            raise TuneError(f"--sampler grid: {error}") from None
    study = (check_study_name(options.study) if options.study is not None
             else _default_study_name(recipe, settings))
    out = Path(options.out) if options.out else Path("runs") / "tune" / study
    if out.exists() and not out.is_dir():
        raise TuneError(f"--out {out} is a file; give a folder for the tune results.")
    if out.is_dir() and any(out.iterdir()) and not (out / "tune.toml").is_file():
        raise TuneError(f"--out {out} is a folder with other files in it, not a tune folder; "
                        "choose a new or empty folder.")
    storage = options.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    check_sqlite_storage(storage)
    identity = {
        "recipe": recipe.name, "dataset": settings["dataset"], "digits": settings["digits"],
        "space": space.table,
        "validation_fraction": VALIDATION_FRACTION, "split_seed": SPLIT_SEED,
    }
    return _Plan(recipe, settings, space, study, out, storage, options, identity)


def check_option(name: str, value: Any) -> Any:
    """Check the option ``--study``, ``--timeout`` or ``--seed`` (`name` without dashes).

    Raises
    ------
    TuneError
        For a study name that is no name (:func:`check_study_name`), a timeout outside
        (0, :data:`MAX_TIMEOUT`] seconds (``inf`` included) or a seed outside 0..2**32 - 1.
    """
    if name == "study":
        return check_study_name(value)
    if name == "timeout" and not 0 < value <= MAX_TIMEOUT:
        raise TuneError(f"--timeout must be a positive number of seconds up to {MAX_TIMEOUT:,} "
                        f"(a year), got {value}.")
    if name == "seed" and not 0 <= value <= MAX_SEED:
        raise TuneError(f"--seed must be a whole number in 0..{MAX_SEED}, got {value}.")
    return value


def check_study_name(name: str) -> str:
    """A study name, checked: it names the study and the default folder ``runs/tune/NAME``.

    Raises
    ------
    TuneError
        If `name` is empty, longer than 128 characters, or holds anything but letters, digits,
        ``.``, ``_`` and ``-`` after a first letter or digit (a path such as ``../x`` or
        ``/tmp/x`` would write outside ``runs/tune``; ``--out`` chooses the folder).
    """
    if not isinstance(name, str) or STUDY_NAME.fullmatch(name) is None:
        raise TuneError(
            f"--study {name!r} is not a study name: use 1 to 128 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit (give --out DIR to choose the folder)."
        )
    return name


def _mlp_recipes() -> list[str]:
    return [name for name, recipe in RECIPES.items() if recipe.kind in ("mlp", "cnn")]


def _check_counts(options: TuneOptions) -> None:
    for name, value in (("--trials", options.trials), ("--jobs", options.jobs),
                        ("--heartbeat", options.heartbeat)):
        if value is not None and value < 1:
            raise TuneError(f"{name} must be at least 1, got {value}.")
    for name in ("timeout", "seed"):
        if getattr(options, name) is not None:
            check_option(name, getattr(options, name))
    if options.trials is None and options.timeout is None and options.sampler != "grid":
        raise TuneError("give --trials N or --timeout SECONDS (or both): how long to search.")
    if options.sampler not in SAMPLERS:
        raise TuneError(f"--sampler: choose one of {', '.join(SAMPLERS)}.")
    if options.pruner not in PRUNERS:
        raise TuneError(f"--pruner: choose one of {', '.join(PRUNERS)}.")


def _read_space(path: str | None, recipe: Recipe) -> Space:
    if path is None:
        return parse_space(default_space(recipe), recipe, where="the default space")
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    from nnscratch._files import open_regular_file, user_file_errors

    try:
        with open_regular_file(path, what="a search space") as handle, user_file_errors(path):
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise TuneError(f"--space {path} does not exist; give a TOML file with a [space] "
                        "table (docs/tune.md).") from None
    except tomllib.TOMLDecodeError as error:
        raise TuneError(f"--space {path} is not valid TOML: {error}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise TuneError(f"--space {path} nests arrays or tables too deeply for the TOML "
                        "reader; a space needs a few levels at most.") from None
    except (OSError, ValueError) as error:
        raise TuneError(f"--space {error}") from None
    table = document.get("space")
    if isinstance(table, dict) and not table:
        raise TuneError(f"--space {path} has an empty [space] table; name at least one "
                        "setting to search, e.g. learning_rate = { low = 1e-4, high = 1e-1, "
                        "log = true } (docs/tune.md).")
    if not isinstance(table, dict):
        raise TuneError(f"--space {path} has no [space] table of settings to search; see "
                        "docs/tune.md for the format.")
    try:
        return parse_space(table, recipe, where=f"--space {path}")
    except SpaceError as error:
        raise TuneError(str(error)) from None


def _default_study_name(recipe: Recipe, settings: dict[str, Any]) -> str:
    """The recipe's name, with the data set and the classes when they are not the recipe's."""
    name = recipe.name
    if settings["dataset"] != recipe.settings["dataset"]:
        name += f"-{settings['dataset']}"
    if settings["digits"] != recipe.settings["digits"]:
        name += f"-classes-{'-'.join(map(str, settings['digits']))}"
    return name


# ---------------------------------------------------------------------------------------------
# Storage and study


def open_storage(url: str, heartbeat: int) -> optuna.storages.RDBStorage:
    """Connect to the study database, with heartbeats and the retry of failed trials.

    ``postgresql://`` URLs use psycopg 3 (``postgresql+psycopg://``).

    Raises
    ------
    TuneError
        If the URL is malformed, its driver is missing or the database cannot be reached.
    """
    import optuna
    import sqlalchemy.exc

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}  # seconds a writer waits for the file lock
    elif url.startswith("postgresql"):
        engine = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    else:
        engine = {}
    shown = redact(url)
    retry = _retry_callback()
    try:
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                with _experimental_allowed():
                    return optuna.storages.RDBStorage(
                        url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                        grace_period=2 * heartbeat, **retry,
                    )
            except sqlalchemy.exc.SQLAlchemyError as error:
                # Two workers that start together on a new database both create its tables;
                # the loser sees them appear half-way and only needs to connect again.
                racing = (isinstance(error, sqlalchemy.exc.IntegrityError)  # schema version row
                          or "already exists" in str(error))  # a table
                if not racing or attempt == _CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover
    except ModuleNotFoundError as error:
        raise TuneError(f"--storage {shown}: the database driver {error.name!r} is not "
                        "installed; for PostgreSQL: pip install 'nnscratch[postgres]'.") from None
    except sqlalchemy.exc.ArgumentError:
        raise TuneError(f"--storage {shown} is not a database URL; give e.g. "
                        "sqlite:///study.db or postgresql+psycopg://user@host/db.") from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise TuneError(f"--storage {shown}: cannot connect ({reason}); check the host, port, "
                        "user, password and database, or leave --storage out for a SQLite "
                        "file in the tune folder.") from None


def check_sqlite_storage(url: str) -> None:
    """Refuse a SQLite storage that cannot keep the study: in memory, or a read-only file.

    Other URLs (and malformed ones) are left to :func:`open_storage`.

    Raises
    ------
    TuneError
        For ``sqlite://``, ``sqlite:///:memory:`` (the study would vanish when the command
        ends, and worker processes could not share it), or a file or folder that cannot be
        written (named, with "read-only").
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    query = {key: str(value) for key, value in parsed.query.items()}
    shown = redact(url)
    if database in ("", ":memory:") or query.get("mode") == "memory" or \
            database.startswith("file::memory:"):
        raise TuneError(f"--storage {shown} is an in-memory SQLite database: the study would be "
                        "lost when tune ends, and worker processes could not share it; give a "
                        "file (sqlite:///PATH/study.db) or leave --storage out.")
    path = Path(database.removeprefix("file:").partition("?")[0]).absolute()
    folder = path.parent
    read_only = query.get("mode") == "ro" or (path.exists() and not os.access(path, os.W_OK)) \
        or (folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK))
    if read_only:
        which = path if query.get("mode") == "ro" or path.exists() else folder
        raise TuneError(f"--storage {shown}: the SQLite file {which} is read-only, so the study "
                        "cannot be written; make it writable (chmod u+w) or give another "
                        "--storage or --out.")


def _retry_callback() -> dict[str, Any]:
    """The storage argument that queues a dead worker's trial again (renamed in Optuna 4.9)."""
    import optuna

    with _experimental_allowed():
        if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
            callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
            return {"heartbeat_stale_trial_callback": callback}
        return {"failed_trial_callback":  # pragma: no cover - Optuna < 4.9
                optuna.storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)}


def retried_trial_number(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the failed trial that ``trial`` retries, or ``None``."""
    import optuna

    callback = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or \
        optuna.storages.RetryFailedTrialCallback
    with _experimental_allowed():
        return callback.retried_trial_number(trial)


@contextlib.contextmanager
def _experimental_allowed() -> Iterator[None]:
    """Optuna marks the heartbeat and its retry as experimental; they are what we want."""
    import optuna

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        yield


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and ``tune.toml``."""
    from sqlalchemy.engine import make_url

    with contextlib.suppress(Exception):
        parsed = make_url(url)
        # Without a password the URL is shown as given (rendering would escape ':' as %3A).
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    return url


def _sampler(name: str, space: Space, seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10)


def _pruner(name: str) -> optuna.pruners.BasePruner:
    import optuna

    if name == "median":
        # Five finished trials before pruning any, and never before the first epoch's score.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _load_study(the_plan: _Plan, storage: Any, *, seed: int | None) -> optuna.Study:
    import optuna

    options = the_plan.options
    return optuna.create_study(
        storage=storage, study_name=the_plan.study, direction="maximize", load_if_exists=True,
        sampler=_sampler(options.sampler, the_plan.space, seed), pruner=_pruner(options.pruner),
    )


def _claim_study(study: optuna.Study, identity: dict[str, Any], name: str) -> None:
    """Record what the study searches, or check that a resumed study searches the same."""
    recorded = study.user_attrs.get("nnscratch")
    if recorded is None:
        study.set_user_attr("nnscratch", identity)
        return
    for key, value in identity.items():
        if recorded.get(key) != value:
            raise TuneError(
                f"--study {name} was created with {key} {recorded.get(key)!r}, not {value!r}; "
                "run it with the same recipe, digits and space, or name a new --study."
            )


# ---------------------------------------------------------------------------------------------
# Ctrl-C


class _Interrupts:
    """Ctrl-C and SIGTERM during a search, delivered where Optuna can record them.

    A ``KeyboardInterrupt`` raised while Optuna writes to its database (a trial's report, its
    final state) can leave the session broken and the trial "running". So a signal is raised
    at once only while a trial is training (:func:`nnscratch._signals.interruptible`); at any
    other moment it is remembered, the study is told to start no new trial, and it is raised
    at the next safe point: after the trial's report, or when ``optimize`` returns. A second
    signal is only remembered. SIGTERM is handled as Ctrl-C (exit 143 instead of 130).
    """

    @contextlib.contextmanager
    def installed(self, study: optuna.Study) -> Iterator[None]:
        """Take over SIGINT and SIGTERM for ``study.optimize`` (in the main thread only, where
        Python delivers signals); raise the signal when the block ends, if it came."""
        def stop(signum: int) -> None:
            with contextlib.suppress(RuntimeError):  # optimize has just returned
                study.stop()

        with _signals.handling(), _signals.on_signal(stop):
            yield
            _signals.check()

    @contextlib.contextmanager
    def training_phase(self) -> Iterator[None]:
        """Training, where a signal is raised at once."""
        with _signals.interruptible():
            yield

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """A database write inside training: a signal waits until it is done."""
        with _signals.deferred():
            yield
        _signals.check()

    def raise_if_requested(self) -> None:
        _signals.check()


_INTERRUPTS = _Interrupts()


# ---------------------------------------------------------------------------------------------
# The objective


class Objective:
    """Train one trial's settings and return its validation accuracy.

    Only the training set is given: the test set cannot be seen during the search.

    Parameters
    ----------
    recipe : Recipe
    settings : dict
        The recipe's settings with the fixed ones of the space; each trial adds its own.
    space : Space
    X : ndarray of shape (n_samples, n_features)
        The whole training set; a fixed stratified share of it (:data:`VALIDATION_FRACTION`)
        scores the trials, the rest trains them.
    y : ndarray of shape (n_samples,)
    """

    def __init__(self, recipe: Recipe, settings: dict[str, Any], space: Space, X: np.ndarray,
                 y: np.ndarray) -> None:
        from nnscratch.nn.training import stratified_split

        self.recipe, self.settings, self.space = recipe, settings, space
        train, validation = stratified_split(y, VALIDATION_FRACTION,
                                             np.random.default_rng(SPLIT_SEED))
        self.X_train, self.y_train = X[train], y[train]
        self.X_val, self.y_val = X[validation], y[validation]

    def trial_settings(self, trial: optuna.Trial) -> dict[str, Any]:
        return {**self.settings, **self.space.sample(trial)}

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        settings = self.trial_settings(trial)
        trial.set_user_attr("settings", settings)
        available, estimate = available_memory(), trial_memory(settings)
        if available is not None and estimate.total > available:
            reason = (f"trial {trial.number}: layers {settings['layers']} need about "
                      f"{format_bytes(estimate.total)} of memory ({estimate.describe()}), but "
                      f"{format_bytes(available)} is available; the trial is failed and the "
                      "search goes on.")
            trial.set_user_attr("fail_reason", reason)
            warnings.warn(reason, UserWarning, stacklevel=2)
            raise TrialMemoryError(reason)

        def report(epoch: int, logs: dict[str, float]) -> None:
            with _INTERRUPTS.paused():
                trial.report(logs["val_accuracy"], epoch + 1)
                prune = trial.should_prune()
            if prune:
                raise optuna.TrialPruned(f"validation accuracy {logs['val_accuracy']:.4f} "
                                         f"after epoch {epoch + 1}")

        with _INTERRUPTS.training_phase():
            model = train_recipe(self.recipe, settings, self.X_train, self.y_train,
                                 validation_data=(self.X_val, self.y_val), callbacks=[report])
        # The weights kept (the best epoch's under early stopping), scored once more.
        return float(np.mean(model.predict(self.X_val) == self.y_val))


# ---------------------------------------------------------------------------------------------
# Running the trials


def _load_data(the_plan: _Plan, *, progress: bool) -> ImageDataset:
    from nnscratch.data import load_dataset

    options, settings = the_plan.options, the_plan.settings
    return load_dataset(settings["dataset"], settings["digits"], data_dir=options.data_dir,
                        dtype=np.dtype(settings["dtype"]), download=options.download,
                        verify=options.verify, progress=progress)


def _optimize(study: optuna.Study, objective: Objective, n_trials: int | None,
              timeout: float | None, callbacks: list[Any]) -> None:
    from nnscratch.nn.training import TrainingDivergedError

    with _experimental_allowed(), _INTERRUPTS.installed(study):
        study.optimize(objective, n_trials=n_trials, timeout=timeout,
                       catch=(TrainingDivergedError, TrialMemoryError), callbacks=callbacks)


def _worker(the_plan: _Plan, n_trials: int | None, seed: int | None, threads: int) -> None:
    """A ``--jobs`` worker process: its share of the trials, with ``threads`` BLAS threads."""
    import optuna
    from threadpoolctl import threadpool_limits

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        threadpool_limits(threads)
        data = _load_data(the_plan, progress=False)
        study = _load_study(the_plan,
                            open_storage(the_plan.storage, the_plan.options.heartbeat),
                            seed=seed)
        _optimize(study, Objective(the_plan.recipe, the_plan.settings, the_plan.space,
                                   data.X_train, data.y_train),
                  n_trials, the_plan.options.timeout, [])
    except KeyboardInterrupt:  # Optuna has marked the running trial failed
        sys.exit(130)


def trial_memory(settings: dict[str, Any]) -> MemoryEstimate:
    """The memory one trial of these settings needs, as ``nnscratch train`` estimates it
    (:func:`nnscratch._memory.training_bytes`: the model, its optimiser, a batch, the data)."""
    n_classes = len(settings["digits"])
    widths = [*settings["layers"], 1 if n_classes == 2 else n_classes]
    return training_bytes(widths, n_classes=n_classes, batch_size=settings["batch_size"],
                          optimizer=settings["optimizer"], momentum=settings.get("momentum", 0.0),
                          itemsize=np.dtype(settings["dtype"]).itemsize)


def worker_count(the_plan: _Plan) -> tuple[int, str | None]:
    """The ``--jobs`` workers this machine can run, and a line saying why, if fewer.

    Each worker loads the data set and trains its own model, so the workers are capped by the
    cores and by the memory available over the estimate of one trial of the recipe's settings.
    """
    asked = the_plan.options.jobs
    cores = os.cpu_count() or 1
    available = available_memory()
    per_worker = trial_memory(the_plan.settings).total
    by_memory = asked if available is None else max(1, available // per_worker)
    jobs = min(asked, cores, by_memory)
    if jobs == asked:
        return jobs, None
    memory = "" if available is None else (
        f" and {format_bytes(available)} of memory (about {format_bytes(per_worker)} per "
        "worker: each loads the data and trains a model)")
    return jobs, (f"--jobs {asked}: starting {jobs} worker(s), as many as {cores} cores"
                  f"{memory} allow.")


def _capped_jobs(the_plan: _Plan) -> TuneOptions:
    jobs, why = worker_count(the_plan)
    if why is not None:
        warnings.warn(why, UserWarning, stacklevel=3)
    return dataclasses.replace(the_plan.options, jobs=jobs)


class TrialMemoryError(MemoryError):
    """One trial's settings need more memory than is available: that trial fails, the search
    goes on."""


def _shares(trials: int | None, jobs: int) -> list[int | None]:
    """``trials`` split between ``jobs`` workers as evenly as whole numbers allow."""
    if trials is None:
        return [None] * jobs
    return [trials // jobs + (i < trials % jobs) for i in range(jobs) if
            trials // jobs + (i < trials % jobs) > 0]


def _run_workers(the_plan: _Plan, study: optuna.Study, bar: Any) -> list[int]:
    """Start the ``--jobs`` worker processes and follow the study until they end.

    Returns the exit code of each. Ctrl-C is passed on to the workers, which mark their running
    trials failed; once they have ended, it is raised here as ``KeyboardInterrupt``.
    """
    options = the_plan.options
    shares = _shares(options.trials, options.jobs)
    threads = max(1, (os.cpu_count() or 1) // len(shares))
    context = multiprocessing.get_context("spawn")
    seeds = [None if options.seed is None else (options.seed + i) % (MAX_SEED + 1)
             for i in range(len(shares))]
    workers = [context.Process(target=_worker, args=(the_plan, n, s, threads), daemon=False)
               for n, s in zip(shares, seeds, strict=True)]
    def forward(signum: int) -> None:
        # Called by the handler, which only records the signal here: raised anywhere in the
        # polling below, a KeyboardInterrupt could be swallowed (in a weakref callback, say).
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGINT)

    with _signals.handling(), _signals.on_signal(forward):
        for worker in workers:
            worker.start()
        if _signals.pending() is not None:  # it came while they started
            forward(signal.SIGINT)
        before = _count_finished(study)
        while any(worker.is_alive() for worker in workers):
            bar.update(_count_finished(study) - before - bar.n)
            time.sleep(0.5)
        bar.update(_count_finished(study) - before - bar.n)
        _signals.check()  # SIGINT or SIGTERM: the workers have failed their running trials
    codes = [worker.exitcode or 0 for worker in workers]
    if 130 in codes:  # Ctrl-C in a terminal reaches the workers, not always this process
        raise KeyboardInterrupt
    return codes


def _count_finished(study: optuna.Study) -> int:
    import optuna

    states = tuple(getattr(optuna.trial.TrialState, s) for s in FINISHED)
    return len(study.get_trials(deepcopy=False, states=states))


# ---------------------------------------------------------------------------------------------
# The command


@dataclass
class TuneResult:
    """What a tune command did: for the summary it prints and its ``--json`` output."""

    out: Path
    study: str
    storage: str
    counts: dict[str, int]
    top: list[dict[str, Any]]
    best: dict[str, Any] | None
    files: list[str]
    worker_exit_codes: list[int] = field(default_factory=list)


def tune(options: TuneOptions) -> TuneResult:
    """Run ``nnscratch tune``: check, search, summarise, train the best on all the data.

    Raises
    ------
    TuneError
        For bad options or space, or a storage that cannot be reached; in that case no tune
        folder is left behind.
    KeyboardInterrupt
        On Ctrl-C, after the running trials are marked failed; finished trials are kept.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    the_plan = plan(options)
    options = the_plan.options = _capped_jobs(the_plan)
    data = _load_data(the_plan, progress=not options.quiet)
    with _new_folder_removed_on_error(the_plan.out):
        storage = open_storage(the_plan.storage, options.heartbeat)
        try:
            study = _load_study(the_plan, storage, seed=options.seed)
            _claim_study(study, the_plan.identity, the_plan.study)
        except optuna.exceptions.StorageInternalError as error:
            cause = str(error.__cause__ or error).strip().splitlines()[0]
            if "readonly" not in cause and "read-only" not in cause:
                raise
            raise TuneError(f"--storage {redact(the_plan.storage)} is read-only ({cause}); "
                            "make the database writable or give another --storage.") from None
        _write_tune_toml(the_plan)
    _signals.saved(f"the finished trials are kept in study {the_plan.study!r} "
                   f"({redact(the_plan.storage)})")
    if not options.quiet:
        print(f"nnscratch tune: study {the_plan.study!r} in {redact(the_plan.storage)}, "
              f"{len(study.trials)} trials so far; recipe {the_plan.recipe.name!r}, digits "
              f"{the_plan.settings['digits']} -> {the_plan.out}", flush=True)
    exit_codes: list[int] = []
    with _trial_bar(options) as bar:
        if options.jobs == 1:
            objective = Objective(the_plan.recipe, the_plan.settings, the_plan.space,
                                  data.X_train, data.y_train)
            _optimize(study, objective, options.trials, options.timeout,
                      [lambda _study, _trial: bar.update(1)])
        else:
            exit_codes = _run_workers(the_plan, study, bar)
    return _summarise(the_plan, study, data, exit_codes)


@contextlib.contextmanager
def _new_folder_removed_on_error(out: Path) -> Iterator[None]:
    """Create ``out``; if it was new and the block fails, remove it again."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


@contextlib.contextmanager
def _trial_bar(options: TuneOptions) -> Iterator[Any]:
    from tqdm.auto import tqdm

    bar = tqdm(total=options.trials, unit="trial", desc="trials", disable=options.quiet,
               dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def _write_tune_toml(the_plan: _Plan) -> None:
    import tomli_w

    document = {"study": {"name": the_plan.study, "storage": redact(the_plan.storage)},
                "task": {"recipe": the_plan.recipe.name, "dataset": the_plan.settings["dataset"],
                         "digits": the_plan.settings["digits"],
                         "validation_fraction": VALIDATION_FRACTION, "split_seed": SPLIT_SEED},
                "space": the_plan.space.table}
    header = "# The study this folder belongs to. Add trials to it by running the same command.\n"
    with atomic_write(the_plan.out / "tune.toml", "w") as handle:
        handle.write(header + tomli_w.dumps(document))


def _summarise(the_plan: _Plan, study: optuna.Study, data: ImageDataset,
               exit_codes: list[int]) -> TuneResult:
    import optuna

    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials)
              for state in optuna.trial.TrialState}
    done = sorted((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE),
                  key=lambda t: -t.value)
    top = [_trial_row(t) for t in done[:TOP]]
    files = [_write_trials_csv(the_plan.out, trials)]
    if the_plan.options.plots:
        files += _draw_plots(the_plan, study)
    best = None
    if done and the_plan.options.final:
        best = _train_best(the_plan, done[0], data)
        files += [str(the_plan.out / "best.toml"), str(the_plan.out / "best")]
    return TuneResult(the_plan.out, the_plan.study, redact(the_plan.storage), counts, top, best,
                      files, exit_codes)


def _trial_row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    seconds = (trial.duration.total_seconds() if trial.duration is not None else None)
    return {"number": trial.number, "state": trial.state.name.lower(), "value": trial.value,
            "epochs": len(trial.intermediate_values), "seconds": seconds,
            "params": dict(trial.params),
            "retry_of": retried_trial_number(trial)}


def _write_trials_csv(out: Path, trials: list[optuna.trial.FrozenTrial]) -> str:
    names = sorted({name for t in trials for name in t.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["number", "state", "val_accuracy", "epochs", "seconds", "retry_of",
                     *names])
    for trial in trials:
        row = _trial_row(trial)
        writer.writerow([row["number"], row["state"], "" if row["value"] is None else row["value"],
                         row["epochs"], "" if row["seconds"] is None else f"{row['seconds']:.3f}",
                         "" if row["retry_of"] is None else row["retry_of"],
                         *(row["params"].get(n, "") for n in names)])
    path = out / "trials.csv"
    with atomic_write(path, "w") as handle:
        handle.write(buffer.getvalue())
    return str(path)


def _draw_plots(the_plan: _Plan, study: optuna.Study) -> list[str]:
    """Optuna's matplotlib figures, each skipped with a warning when it cannot be drawn yet
    (importances need two completed trials with varied settings)."""
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as figures

    plt.switch_backend("Agg")
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    plots = {
        "optimization_history.png": lambda: figures.plot_optimization_history(
            study, target_name="validation accuracy"),
        "param_importances.png": lambda: figures.plot_param_importances(
            study, evaluator=evaluator, target_name="validation accuracy"),
    }
    if any(d.name == "learning_rate" for d in the_plan.space.dimensions):
        plots["accuracy_vs_learning_rate.png"] = lambda: figures.plot_slice(
            study, params=["learning_rate"], target_name="validation accuracy")
    written = []
    for name, draw in plots.items():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            # PED-ANOVA's note when few trials separate good from bad: the plot says as much.
            warnings.filterwarnings("ignore", message="Target and region quantiles")
            try:
                axes = draw()
            except (ValueError, RuntimeError) as error:
                warnings.warn(f"{name} not drawn: {error}", stacklevel=2)
                continue
        figure = np.ravel(axes)[0].figure
        with atomic_write(the_plan.out / name) as handle:
            figure.savefig(handle, format="png", dpi=120, bbox_inches="tight")
        plt.close(figure)
        written.append(str(the_plan.out / name))
    return written


def _train_best(the_plan: _Plan, trial: optuna.trial.FrozenTrial,
                data: ImageDataset) -> dict[str, Any]:
    """Train the best settings on the whole training set, test once, write ``best/``."""
    settings = dict(trial.user_attrs["settings"])
    quiet = the_plan.options.quiet
    if not quiet:
        print(f"training the best settings (trial {trial.number}, validation accuracy "
              f"{trial.value:.4f}) on all {data.train_size} training examples", flush=True)
    start = time.perf_counter()
    predictor = train_recipe(the_plan.recipe, settings, data.X_train, data.y_train,
                             verbose=0 if quiet else 1)
    run = runs.record_run(the_plan.recipe, settings, predictor, data,
                          time.perf_counter() - start)
    run.metrics["tune"] = {"study": the_plan.study, "trial": trial.number,
                           "val_accuracy": trial.value}
    # Written beside and swapped in whole (runs.write_run is a transaction).
    runs.write_run(the_plan.out / "best", run, plots=the_plan.options.plots, overwrite=True)
    runs.write_config(the_plan.out / "best.toml", settings)
    return {"trial": trial.number, "val_accuracy": trial.value, "settings": settings,
            "test_accuracy": run.metrics["test_accuracy"],
            "train_accuracy": run.metrics["train_accuracy"],
            "run_dir": str(the_plan.out / "best")}


def format_summary(result: TuneResult) -> str:
    """The summary ``nnscratch tune`` prints: the counts, the top trials and the best run."""
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
    lines = [f"study {result.study!r}: {counts or 'no trials'}"]
    if result.worker_exit_codes and any(result.worker_exit_codes):
        lines.append(f"worker exit codes: {result.worker_exit_codes} (their running trials "
                     "are failed by the heartbeat and retried)")
    if result.top:
        names = sorted({n for row in result.top for n in row["params"]})
        rows = [["trial", "val acc", "epochs", "seconds", *names]]
        rows += [[str(r["number"]), f"{r['value']:.4f}", str(r["epochs"]),
                  "" if r["seconds"] is None else f"{r['seconds']:.1f}",
                  *(_short(r["params"].get(n, "")) for n in names)] for r in result.top]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines.append(f"top {len(result.top)} trials by validation accuracy:")
        lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
                  for row in rows]
    if result.best:
        best = result.best
        lines.append(f"best: trial {best['trial']}, validation {best['val_accuracy']:.2%}; "
                     f"trained on all the training data: test accuracy "
                     f"{best['test_accuracy']:.2%}")
        lines.append(f"run folder: {best['run_dir']}  (repeat: nnscratch train --config "
                     f"{result.out / 'best.toml'})")
    lines.append(f"tune folder: {result.out}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def result_json(result: TuneResult) -> dict[str, Any]:
    """The ``--json`` document of a tune command."""
    return {"out": str(result.out), "study": result.study, "storage": result.storage,
            "counts": result.counts, "top": result.top, "best": result.best,
            "files": result.files, "worker_exit_codes": result.worker_exit_codes}


__all__ = ["Objective", "TuneError", "TuneOptions", "TuneResult", "format_summary",
           "open_storage", "plan", "redact", "result_json", "tune"]
