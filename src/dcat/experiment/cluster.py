"""The grid on Ray: ``dcat experiment CONFIG --workers N [--cluster ADDRESS]``.

Every model is a Ray task running :func:`dcat.experiment.grid.train_model`, the function a
sequential run calls, so the same seeds give the same metrics. A transfer is submitted once
the baselines it learns from are finished, and at most ``workers`` models run at once, each
holding ``resources.cpus`` CPUs (torch threads) and ``resources.gpus`` GPUs. The data set goes
to the object store once; a worker keeps it for the models it trains after.

A worker that dies (killed, out of memory, its machine lost) has its model retried by Ray,
which resumes from the model's ``last.ckpt``; a model whose ``metrics.json`` is written is
never trained again. Workers write only their own model's run folder, so on a cluster the
results folder must be on a file system every node sees (NFS, a shared volume).

The run joins (or starts) Ray first, with :func:`ray_session`, before it reads the data, so a
cluster that cannot be reached is reported at once, not after minutes of loading. SIGINT and
SIGTERM stop the driver as a run in order stops (:mod:`dcat.io.interrupt`): the running tasks
end, and their models resume from their ``last.ckpt`` when the command is run again. On a
Ray instance of its own the run shuts Ray down, which ends its workers; it force-cancels tasks
only on a cluster it joined, since a cancel that meets a task as it finishes can crash Ray's
driver (a failed internal check, exit 1) before the run can say it was interrupted.

Ray is the optional extra ``dcat[cluster]``; nothing here is imported with ``--workers 1``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcat.data import PairedDataset
from dcat.errors import DcatError
from dcat.experiment.config import ExperimentConfig
from dcat.experiment.console import quiet_libraries
from dcat.experiment.grid import ModelResult, ModelSpec, train_model

__all__ = ["MAX_RETRIES", "WORKER_LOG", "RaySession", "ray_session", "require_ray", "run_on_ray"]

MAX_RETRIES = 3
"""How often Ray retries a model whose worker died."""

WORKER_LOG = "train.log"
"""A model's log file in its run folder, when a worker trained it: Lightning's lines and the
warnings of its training."""

# the data set of this worker process, by object id: fetched once per worker, not per model
_WORKER_DATA: dict[str, PairedDataset] = {}


def _train_in_worker(
    config: ExperimentConfig,
    data_box: list[Any],
    spec: ModelSpec,
    out: str,
    token: str,
    threads: int,
    verbose: bool,
) -> ModelResult:
    import ray

    ref = data_box[0]  # boxed, so Ray hands over the reference, not a fresh copy per model
    key = ref.hex()
    if key not in _WORKER_DATA:
        _WORKER_DATA.clear()
        _WORKER_DATA[key] = ray.get(ref)
    # Lightning's lines and warnings of this model go to its own folder, the only one a
    # worker writes (the driver keeps OUT/experiment.log)
    run_dir = Path(out) / spec.folder
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / WORKER_LOG).open("a", encoding="utf-8") as log, quiet_libraries(verbose, log):
        return train_model(config, _WORKER_DATA[key], spec, out, token=token, threads=threads)


def require_ray() -> None:
    """Import Ray, or say how to install it.

    Raises:
        DcatError: Ray is not installed (or cannot be imported).
    """
    try:
        import ray  # noqa: F401
    except ImportError as err:
        raise DcatError(
            "--workers N needs Ray, the optional extra: pip install 'dcat[cluster]'"
        ) from err


@dataclass(frozen=True)
class RaySession:
    """How this process holds Ray for a run (what :func:`ray_session` yields).

    Attributes:
        connected: This session called ``ray.init`` (joined or started Ray), so it shuts Ray
            down at the end; ``False`` when Ray was up already.
        own_instance: This session started the Ray instance itself: its shutdown ends the
            workers, so running tasks are never force-cancelled (see the module docstring).
    """

    connected: bool
    own_instance: bool


def _init(ray: Any, address: str | None, workers: int, cpus: int, verbose: bool) -> RaySession:
    """Join ``address`` (or ``RAY_ADDRESS``), or start a local instance, unless Ray is up
    already; says whether this call connected and whether it started the instance."""
    if ray.is_initialized():
        return RaySession(connected=False, own_instance=False)
    address = address or os.environ.get("RAY_ADDRESS") or None
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": verbose,
        "logging_level": logging.INFO if verbose else logging.ERROR,
    }
    # ray.init replaces the SIGTERM handler with its own sys.exit(15), and its core worker
    # puts a crash handler (a stack dump, then abort) before that: the caller's handler decides
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        if address is not None:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=max(os.cpu_count() or 1, workers * cpus), **options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise DcatError(f"could not start {where}: {err}".replace("\n", " ")) from err
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)
    return RaySession(connected=True, own_instance=address is None)


@contextmanager
def ray_session(
    address: str | None, workers: int, cpus: int, verbose: bool = False
) -> Iterator[RaySession]:
    """Ray for a whole run: joined (``address``, else ``RAY_ADDRESS``) or started locally on
    entry, shut down on exit if this call started it. Pass what it yields to
    :func:`run_on_ray` inside, which then uses this Ray.

    Args:
        address: A Ray cluster to join (``ray://…`` or ``HOST:PORT``), or ``None``.
        workers: Models at once (a local instance gets CPUs for them all).
        cpus: CPUs (torch threads) per model.
        verbose: Forward the workers' output and Ray's INFO lines.

    Yields:
        How this process holds Ray (whether it started the instance).

    Raises:
        DcatError: Ray is not installed, or the cluster cannot be reached or started.
    """
    require_ray()
    import ray

    session = _init(ray, address, workers, cpus, verbose)
    try:
        yield session
    finally:
        if session.connected:
            ray.shutdown()


def run_on_ray(
    config: ExperimentConfig,
    data: PairedDataset,
    specs: Sequence[ModelSpec],
    out: Path,
    *,
    token: str,
    workers: int,
    address: str | None = None,
    verbose: bool = False,
    session: RaySession | None = None,
    started: Callable[[ModelSpec], None],
    done: Callable[[ModelSpec, ModelResult], None],
) -> None:
    """Train ``specs`` as Ray tasks, at most ``workers`` at once; ``done`` is called in the
    driver as each finishes (in finishing order).

    Args:
        config: The experiment (``resources`` sizes each task).
        data: The data set, put in the object store once.
        specs: The models to train, in plan order; a model's ``sources`` not among them are
            finished already.
        out: The results folder (on a cluster: a path every node sees).
        token: Names the run (see :func:`~dcat.experiment.grid.train_model`).
        workers: Models at once (≥ 2).
        address: A Ray cluster to join (``ray://…`` or ``HOST:PORT``); default ``RAY_ADDRESS``,
            else a local instance on this machine. Unused with ``session``.
        verbose: Forward the workers' output and Lightning's lines.
        session: The :func:`ray_session` this call runs in; default a session of its own, for
            this call only.
        started: Called when a model is submitted.
        done: Called with each finished model's result.

    Raises:
        DcatError: Ray is not installed or cannot start, a model's bad input (its one-line
            message), or a model whose worker died more than :data:`MAX_RETRIES` times.
    """
    require_ray()
    import ray

    cpus = config.resources.cpus
    with ExitStack() as stack:
        if session is None:
            session = stack.enter_context(ray_session(address, workers, cpus, verbose))
        remote = ray.remote(num_cpus=cpus, num_gpus=config.resources.gpus, max_retries=MAX_RETRIES)(
            _train_in_worker
        )
        running: dict[Any, ModelSpec] = {}
        try:
            box = [ray.put(data)]  # once: every task gets the same object

            def submit(spec: ModelSpec) -> None:
                ref = remote.remote(config, box, spec, str(out), token, cpus, verbose)
                running[ref] = spec
                started(spec)

            _train_all(ray, specs, workers, running, submit, done)
        finally:
            if running and not session.own_instance:  # a joined cluster outlives this driver
                for ref in running:
                    ray.cancel(ref, force=True)


def _train_all(
    ray: Any,
    specs: Sequence[ModelSpec],
    workers: int,
    running: dict[Any, ModelSpec],
    submit: Callable[[ModelSpec], None],
    done: Callable[[ModelSpec, ModelResult], None],
) -> None:
    """Submit each spec once the models it learns from are finished, at most ``workers`` at
    once, and hand each result to ``done`` as it comes in.

    Args:
        ray: The Ray module.
        specs: The models, in plan order.
        workers: Models at once.
        running: The tasks submitted and not yet finished, by reference; ``submit`` adds to
            it, and what is left in it after an error is for the caller to cancel.
        submit: Starts a model's task (and records it in ``running``).
        done: Called with each finished model's result.

    Raises:
        DcatError: A model waits for one that is not planned, or its task failed (see
            :func:`_result`).
    """
    todo = {spec.folder for spec in specs}
    finished: set[str] = set()
    pending = list(specs)
    while pending or running:
        for spec in list(pending):
            if len(running) >= workers:
                break
            if all(s not in todo or s in finished for s in spec.sources):
                pending.remove(spec)
                submit(spec)
        if not running:  # the plan puts every baseline before its transfers
            raise DcatError(f"{pending[0].folder} waits for a model that is not planned")
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            spec = running.pop(ref)
            result = _result(ray, ref, spec)
            finished.add(spec.folder)
            done(spec, result)


def _result(ray: Any, ref: Any, spec: ModelSpec) -> ModelResult:
    """The result of ``spec``'s finished task ``ref``.

    Raises:
        Exception: The task's own error (a model's bad input), unwrapped from Ray's.
        DcatError: The model's worker died more than :data:`MAX_RETRIES` times.
    """
    from ray.exceptions import RayTaskError, WorkerCrashedError

    try:
        return ray.get(ref)
    except RayTaskError as err:
        cause = getattr(err, "cause", None)
        raise (cause if isinstance(cause, Exception) else err) from None
    except WorkerCrashedError as err:
        raise DcatError(
            f"{spec.folder}: its worker died {MAX_RETRIES + 1} times ({err}); "
            "run the same command again to resume"
        ) from err
