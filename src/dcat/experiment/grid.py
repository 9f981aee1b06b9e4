"""One model of the protocol grid, trained from what a worker receives.

A sequential run and every Ray worker (:mod:`dcat.experiment.cluster`) train a model with the
same :func:`train_model`. It gets what the model is (a :class:`ModelSpec`), draws the data
parts and normalisation of its split, reads the frozen sources from their finished run
folders, and writes only its own run folder. Each model seeds itself, so its metrics do not
depend on the process that trains it or on the order: with the same torch threads, a grid run
on workers equals one run in order, record for record.

What several models of one process share (a split's normalised parts, the loaded sources) is
kept in a small per-process cache keyed by the run's token, so a worker that trains many
models of one seed prepares its data once.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from dcat.data import PairedDataset, Split
from dcat.experiment.build import TEACHER_FOLDER, build_model, build_net, fit_stats, teacher_net
from dcat.experiment.config import ExperimentConfig
from dcat.experiment.fingerprint import FINGERPRINT_FILE
from dcat.experiment.plan import Job, trained_here
from dcat.experiment.recipe import Recipe
from dcat.io.atomic import write_atomic
from dcat.io.normalization import ChannelStats
from dcat.nn.model import ModalityNet
from dcat.training.cache import SourceCache
from dcat.training.engine import fit, learns_unlabelled
from dcat.training.run_folder import RunFolder
from dcat.training.tasks import TransferTask, UnimodalTask

__all__ = [
    "ModelResult",
    "ModelSpec",
    "clear_cache",
    "hold_threads",
    "run_in_order",
    "train_model",
]


@dataclass(frozen=True)
class ModelSpec:
    """One model to train, with everything a worker needs besides the data and config.

    Attributes:
        recipe: The model (:class:`~dcat.experiment.recipe.Recipe`; its run folder is
            ``recipe.job.folder``).
        split: Its drawn split.
        fingerprint: What its run folder records (``fingerprint.json``) before training.
        sources: Run folders of the baselines it learns from: they must be finished first.
        epochs: A refit's epoch count (it trains on training + validation data and keeps its
            last epoch); ``None`` for a model of the grid.
    """

    recipe: Recipe
    split: Split
    fingerprint: dict[str, Any]
    sources: tuple[str, ...] = ()
    epochs: int | None = None

    @property
    def job(self) -> Job:
        return self.recipe.job

    @property
    def folder(self) -> str:
        return self.job.folder

    def describe(self) -> str:
        """``ood seed=0 imu: skeleton→imu dcat λ=1``."""
        job = self.job
        what = job.method if not job.source else f"{job.source}→{job.target} {job.method}"
        lam = f" λ={job.weight:g}" if job.weight is not None else ""
        return f"{job.split} seed={job.seed} {job.target}: {what}{lam}"


@dataclass
class ModelResult:
    """What training one model gave.

    Attributes:
        folder: Its run folder, relative to the results folder.
        metrics: Its ``metrics.json``.
        trained: ``False`` when it was finished before (nothing was trained).
        seconds: Wall time in :func:`train_model`.
    """

    folder: str
    metrics: dict[str, Any]
    trained: bool
    seconds: float


@dataclass
class _SeedData:
    stats: dict[str, ChannelStats]
    parts: dict[str, PairedDataset]
    everything: PairedDataset | None = None
    sources: dict[str, ModalityNet] = field(default_factory=dict)
    caches: dict[tuple[str, ...], SourceCache] = field(default_factory=dict)


# (run token, split name, seed) → its data; a worker trains a seed's models mostly together.
_CACHE: OrderedDict[tuple[str, str, int], _SeedData] = OrderedDict()
_CACHE_SIZE = 2


def clear_cache() -> None:
    """Forget the prepared data of earlier models (a run calls it when it ends)."""
    _CACHE.clear()


def _seed_data(
    config: ExperimentConfig, data: PairedDataset, split: Split, token: str
) -> _SeedData:
    key = (token, split.label, split.seed)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    stats = fit_stats(config, data.subset(split.train))
    parts = {name: data.subset(idx).normalized(stats) for name, idx in split.parts().items()}
    parts["train"] = parts["train"].hiding_labels(np.searchsorted(split.train, split.hidden))
    _CACHE[key] = entry = _SeedData(stats, parts)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return entry


def train_model(
    config: ExperimentConfig,
    data: PairedDataset,
    spec: ModelSpec,
    out: str | Path,
    *,
    token: str,
    threads: int | None = None,
) -> ModelResult:
    """Train one model of the grid (or take it as it is when its ``metrics.json`` is there).

    Args:
        config: The experiment.
        data: The whole data set (derived modalities included).
        spec: The model.
        out: The results folder; only ``out / spec.folder`` is written.
        token: Names the run: models of one token share their split's prepared data.
        threads: torch intra-op threads for this model (``None``: leave them).

    Returns:
        :class:`ModelResult`. An interrupted model resumes from its ``last.ckpt``.
    """
    started = time.perf_counter()
    run_dir = Path(out) / spec.folder
    folder = RunFolder(run_dir)
    if folder.finished():
        return ModelResult(spec.folder, folder.read_metrics(), False, 0.0)
    if threads is not None:
        hold_threads(threads)
    job = spec.job
    prepared = _seed_data(config, data, spec.split, token)
    # recorded before training starts, so an interrupted run is checked too
    write_atomic(run_dir / FINGERPRINT_FILE, json.dumps(spec.fingerprint, indent=1, sort_keys=True))
    sources = {
        p.modality: _source(config, data, prepared, Path(out), job, p.modality)
        for p in job.parts
        if p.needs_network
    }
    task = build_model(spec.recipe, data, sources, prepared.stats)
    train_config = spec.recipe.train
    keep: Literal["best", "last"]
    train, keep, part = prepared.parts["train"], "best", "train"
    if spec.epochs is not None:
        if prepared.everything is None:
            both = np.concatenate([spec.split.train, spec.split.val])
            hidden = np.searchsorted(spec.split.train, spec.split.hidden)  # train comes first
            prepared.everything = data.subset(both).normalized(prepared.stats).hiding_labels(hidden)
        train, keep, part = prepared.everything, "last", "everything"
        train_config = replace(train_config, max_epochs=spec.epochs)
    # every model of a seed that learns from one source reads the same cache of it
    # with unlabelled samples, a task that learns from labels only trains on the labelled ones:
    # its cache has other rows
    rows = part if not train.has_unlabelled or learns_unlabelled(task) else f"{part}-labelled"
    how = (rows, train_config.cache_dtype, str(train_config.cache_dir))
    caches = _caches(task, job, how, config)
    for name, key in caches.items():
        if isinstance(task, TransferTask) and key in prepared.caches:
            task.attach_cache(name, prepared.caches[key])
    result = fit(
        task,
        train,
        prepared.parts["val"],
        train_config,
        run_dir,
        test=prepared.parts["test"],
        extra_config={"experiment": config.name, "job": job.describe()},
        normalization=prepared.stats.get(job.target),
        keep=keep,
    )
    for name, key in caches.items():
        cache = task.cache(name) if isinstance(task, TransferTask) else None
        if cache is not None:
            prepared.caches[key] = cache
    # what fit wrote to metrics.json (under DDP only rank 0 writes it: the others read no file)
    metrics = {
        "val": result.val,
        "test": result.test,
        "best_checkpoint": result.best_checkpoint.name,
    }
    return ModelResult(spec.folder, metrics, True, time.perf_counter() - started)


def _caches(
    task: UnimodalTask | TransferTask, job: Job, how: tuple[str, ...], config: ExperimentConfig
) -> dict[str, tuple[str, ...]]:
    """Source name in ``task`` → the key of its cache (the source's run folder, which names
    its modality and tells a refitted source from the grid's, the training part and the
    cache's dtype and folder) in a seed's prepared data."""
    if not isinstance(task, TransferTask):
        return {}
    return {
        s.name: (_source_folder(config, job, s.input_key), *how)
        for s in task.specs
        if s.name in task.sources
    }


def _source_folder(config: ExperimentConfig, job: Job, modality: str) -> str:
    """The run folder of ``job``'s source ``modality``, or ``teachers/<modality>``."""
    if trained_here(config, modality):
        return job.baseline(modality).folder
    return f"{TEACHER_FOLDER}/{modality}"


def _source(
    config: ExperimentConfig,
    data: PairedDataset,
    prepared: _SeedData,
    out: Path,
    job: Job,
    modality: str,
) -> ModalityNet:
    """The frozen baseline of ``modality`` at ``job``'s split and seed, from its run folder, or
    the modality's teacher trained elsewhere."""
    if not trained_here(config, modality):
        return teacher_net(config, data, modality)
    folder = job.baseline(modality).folder
    key = str(out / folder)
    if key not in prepared.sources:
        net = build_net(config, data, modality, job.seed)
        prepared.sources[key] = RunFolder(out / folder).load_target(net)
    return prepared.sources[key]


def hold_threads(threads: int) -> None:
    """Set torch's intra-op threads to ``threads`` for the models this process trains, and
    ``OMP_NUM_THREADS`` with them: Lightning's DDP set-up would otherwise set cores ÷ processes
    (it keeps the threads when the variable is there), and the processes it launches inherit
    it. The one thread policy of sequential runs, Ray workers and DDP (``resources.cpus``)."""
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def run_in_order(
    config: ExperimentConfig,
    data: PairedDataset,
    specs: Sequence[ModelSpec],
    out: Path,
    *,
    token: str,
    started: Callable[[ModelSpec], None],
    done: Callable[[ModelSpec, ModelResult], None],
) -> None:
    """Train ``specs`` one after another in this process (``--workers 1``; no Ray).

    The plan puts each baseline before the transfers that learn from it. torch's threads (and
    ``OMP_NUM_THREADS``) are set from ``resources.cpus``, as a Ray worker sets them
    (:func:`hold_threads`), and put back after.
    """
    threads = config.resources.cpus
    before, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    try:
        for spec in specs:
            started(spec)
            done(spec, train_model(config, data, spec, out, token=token, threads=threads))
    finally:
        torch.set_num_threads(before)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp
