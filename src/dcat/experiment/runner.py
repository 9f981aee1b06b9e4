"""The paper's protocol end to end (docs/design.md, "The protocol") → a results folder.

For every split kind and seed: draw the split (saved), fit normalisation on its training part,
train a unimodal baseline per modality (each is also the frozen source of transfers from that
modality), then for every source → target pair train a fresh target with each requested method
and the λ sweep, and evaluate every model on the test part. Then write ``results.json``,
``results.csv`` and ``report.md`` with plots.

Run folder::

    OUT/config.yaml                 resolved configuration and versions
    OUT/splits/<kind>_seed<k>.json  the splits (indices, and subjects by name)
    OUT/runs/<kind>/seed<k>/<target>/<method>/   one engine run each (checkpoints, logs, metrics)
    OUT/results.json, results.csv   one record per trained model
    OUT/report.md, OUT/*.png        tables like the paper's II–IV, plots

A finished model (its ``metrics.json`` present) is not trained again, and an interrupted one
resumes from its last checkpoint, so running the same command again completes a run.

Bad input (the data, reader and encoder options, every split of every seed, checkpoints an
earlier run left in the folder) is found before the folder is created or written to; the cases
and their messages are catalogued in ``docs/errors.md``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from dcat.data import PairedDataset, Split, make_split, resolve_subjects
from dcat.data.augment import InertialAugment
from dcat.data.registry import get_dataset
from dcat.data.virtual import with_virtual_imu
from dcat.errors import DcatError
from dcat.experiment.config import ExperimentConfig, SplitConfig
from dcat.experiment.fingerprint import (
    FINGERPRINT_FILE,
    digest,
    find_mismatches,
    job_fingerprints,
    mismatch_message,
)
from dcat.experiment.pick import mark_picks
from dcat.experiment.plan import Job, plan_jobs
from dcat.io.atomic import write_atomic
from dcat.io.lock import RunLock
from dcat.io.normalization import ChannelStats, center_positions
from dcat.nn.encoders import create_encoder
from dcat.nn.model import ModalityNet
from dcat.nn.weights import load_torch_file
from dcat.training.engine import fit, versions
from dcat.training.methods import get_method
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask

# Samples per modality in the dry run's batch: two, so batch norm sees a batch, not one value.
_DRY_RUN_SAMPLES = 2

__all__ = ["RESULT_FIELDS", "Job", "dry_run", "load_dataset", "plan_jobs", "run_experiment"]

RESULT_FIELDS = [
    "dataset", "split", "seed", "source", "target", "method", "lambda", "mcma",
    "accuracy", "precision", "recall", "f1", "val_f1", "pick", "refit", "run",
]  # fmt: skip
"""Columns of ``results.csv``: test metrics, the validation F1 the pick is chosen by, whether
the model is its split, seed and target's pick (:mod:`dcat.experiment.pick`), and whether it
is a refit on training and validation data (``refit: true`` in the configuration)."""


def load_dataset(config: ExperimentConfig) -> PairedDataset:
    """Read the configured data set through the data-set registry (:mod:`dcat.data.registry`).

    Raises:
        DcatError: An unknown data set, unknown or mistyped ``data.options``, a missing
            ``data.root``, or bad files.
    """
    data = config.data
    return derive_modalities(config, get_dataset(data.dataset).load(data.root, dict(data.options)))


def derive_modalities(config: ExperimentConfig, data: PairedDataset) -> PairedDataset:
    """``data`` plus the modalities the configuration derives from others
    (``modalities.<name>.derive``: channels, or a virtual IMU from a skeleton); already-present
    ones are kept as they are. Derivation reads the raw arrays, before any normalisation.

    Raises:
        DcatError: The base modality is not in the data set, or the channels do not fit it.
    """
    for name, spec in config.modalities.items():
        if spec.derive is None or name in data.modalities:
            continue
        where = f"config: modalities.{name}.derive"
        if spec.derive.modality not in data.modalities:
            raise DcatError(
                f"{where}: modality {spec.derive.modality!r} is not in the data set "
                f"{config.data.dataset!r}, which has {data.modalities}"
            )
        virtual = spec.derive.virtual_imu
        try:
            if virtual is None:
                data = data.with_channels(name, spec.derive.modality, spec.derive.channel_indices())
            else:
                data = with_virtual_imu(
                    data, name, spec.derive.modality, virtual.like,
                    segment=virtual.segment, placement=virtual.placement_map(),
                    joints=virtual.joint_names(), smoothing=virtual.smoothing,
                )  # fmt: skip
        except DcatError as err:
            raise DcatError(f"{where}: {err}") from err
    return data


def _in_channels(data: PairedDataset, modality: str) -> int:
    shape = data.shape(modality)
    return shape[1] if len(shape) == 4 else shape[0]  # video (F, C, H, W) or series (C, T)


# Channel names that mark a series as inertial (accelerometer, gyroscope, magnetometer).
_INERTIAL = ("acc", "gyr", "mag")


def default_encoder(data: PairedDataset, modality: str) -> str:
    """The encoder a modality gets when its config names none: ``video`` for frames,
    ``audio`` for sound, ``imu`` for inertial series (channel names with acc/gyr/mag, in
    triads) and ``sequence`` for any other series."""
    stream = data.stream(modality)
    if len(data.shape(modality)) == 4 or stream.kind == "video":
        return "video"
    if stream.kind == "audio":
        return "audio"
    names = [name.lower() for name in stream.channels or ()]
    inertial = names and all(any(mark in name for mark in _INERTIAL) for name in names)
    return "imu" if inertial and len(names) % 3 == 0 else "sequence"


def default_encoders(
    config: ExperimentConfig, data: PairedDataset, log: Callable[[str], None] = print
) -> ExperimentConfig:
    """``config`` with an encoder for every modality that names none and is in the data (see
    :func:`default_encoder`); an audio encoder gets the stream's sample rate."""
    modalities = dict(config.modalities)
    for name, spec in config.modalities.items():
        if spec.encoder is not None or name not in data.modalities:
            continue
        encoder = default_encoder(data, name)
        options = dict(spec.options)
        rate = data.stream(name).rate_hz
        if encoder == "audio" and rate is not None and "sample_rate" not in options:
            options["sample_rate"] = round(rate)
        modalities[name] = spec.model_copy(update={"encoder": encoder, "options": options})
        log(f"modality {name}: encoder {encoder} (default for its {data.stream(name).kind} data)")
    return config.model_copy(update={"modalities": modalities})


def build_net(
    config: ExperimentConfig, data: PairedDataset, modality: str, seed: int, *, plain: bool = False
) -> ModalityNet:
    """A freshly initialised network for ``modality``; the same seed gives the same weights.

    With ``plain``, the network of the plain reference: no attention, no auxiliary head."""
    spec = config.modalities[modality]
    torch.manual_seed(seed)
    try:
        encoder = create_encoder(spec.encoder, _in_channels(data, modality), **spec.options)
    except ValueError as err:
        raise DcatError(f"config: modalities.{modality}: {err}") from err
    dropout = config.dropout if spec.dropout is None else spec.dropout
    return ModalityNet(
        encoder,
        d_out=config.d_out,
        num_classes=data.num_classes,
        dropout=dropout,
        attention="none" if plain else spec.attention,
        aux_head=spec.aux_head and not plain,
    )


def _augmentation(
    config: ExperimentConfig, modality: str, stats: dict[str, ChannelStats]
) -> InertialAugment | None:
    """The configured augmentation of ``modality`` as a target, on its normalised inputs."""
    spec = config.data.augment.get(modality)
    if spec is None:
        return None
    norm = stats.get(modality)
    return InertialAugment(
        **spec.model_dump(),
        shift=None if norm is None else norm.shift,
        scale=None if norm is None else norm.scale,
    )


def _check_augmentation(config: ExperimentConfig, data: PairedDataset) -> None:
    for modality, spec in config.data.augment.items():
        where = f"config: data.augment.{modality}"
        if modality not in data.modalities:
            raise DcatError(f"{where}: modality {modality!r} is not in the data set")
        shape = data.shape(modality)
        if len(shape) != 2:
            raise DcatError(f"{where}: inertial augmentation needs (C, T) series, got {shape}")
        if spec.rotation > 0 and shape[0] % 3:
            raise DcatError(
                f"{where}: rotation needs channels in (x, y, z) triads, {modality!r} has {shape[0]}"
            )


def _normalization_kinds(config: ExperimentConfig, data: PairedDataset) -> dict[str, str]:
    kinds = config.data.normalization
    kinds = kinds if isinstance(kinds, dict) else dict.fromkeys(data.modalities, kinds)
    for modality, kind in kinds.items():
        if modality not in data.modalities:
            raise DcatError(
                f"config: data.normalization: modality {modality!r} is not in the data set "
                f"(has {data.modalities})"
            )
        if kind not in ("zscore", "minmax", "none"):
            raise DcatError(
                f"config: data.normalization.{modality}: must be zscore, minmax "
                f"or none, got {kind!r}"
            )
    for modality, mode in config.data.centering.items():
        where = f"config: data.centering.{modality}"
        if modality not in data.modalities:
            raise DcatError(f"{where}: modality {modality!r} is not in the data set")
        if kinds.get(modality, "zscore") == "none":
            raise DcatError(f"{where}: centring is part of the normalisation, which is 'none'")
        try:  # the layout (points of x, y, z) and the root, before anything is written
            center_positions(np.zeros((1, *data.shape(modality))), mode)
        except DcatError as err:
            raise DcatError(f"{where}: {err}") from err
    return kinds


def _normalize(config: ExperimentConfig, train: PairedDataset) -> dict:
    kinds = _normalization_kinds(config, train)
    stats = train.fit_normalization(
        {m: k for m, k in kinds.items() if k != "none"}, center=config.data.centering
    )
    return {m: s for m, s in stats.items() if kinds.get(m, "zscore") != "none"}


def _load_target(run_dir: Path, net: ModalityNet) -> ModalityNet:
    """Load the finished run's best target weights into ``net`` (a fresh network)."""
    path = run_dir / "checkpoints" / "best.ckpt"
    checkpoint = load_torch_file(path)
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise DcatError(f"{path} is not a dcat checkpoint (no state_dict)")
    prefix = "task.target."
    state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    _check_fits(path, state, net)
    net.load_state_dict(state)
    return net.eval()


def _check_fits(path: Path, state: dict[str, Any], net: ModalityNet) -> None:
    """A ValueError naming ``path`` and what differs when ``state`` is not a ``net``."""
    expected = net.state_dict()
    problems = []
    head, want = state.get("head.weight"), expected["head.weight"]
    if isinstance(head, torch.Tensor) and head.ndim == 2 and head.shape != want.shape:
        if head.shape[0] != want.shape[0]:
            problems.append(
                f"holds a model for {head.shape[0]} classes, this experiment needs {want.shape[0]}"
            )
        if head.shape[1] != want.shape[1]:
            problems.append(f"has d_out {head.shape[1]}, this experiment needs {want.shape[1]}")
    if not problems:
        shapes = [
            f"{k} {tuple(state[k].shape)} ≠ {tuple(v.shape)}"
            for k, v in expected.items()
            if k in state and getattr(state[k], "shape", None) != v.shape
        ]
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        found = {"shapes differ": shapes, "missing": missing, "unexpected": unexpected}
        for what, keys in found.items():
            if keys:
                more = f" (+{len(keys) - 4} more)" if len(keys) > 4 else ""
                problems.append(f"{what}: {', '.join(keys[:4])}{more}")
    if problems:
        raise DcatError(
            f"{path} {'; '.join(problems)}: it was trained with another configuration; use a "
            "fresh --out folder"
        )


def _record(job: Job, metrics: dict, dataset: str) -> dict[str, Any]:
    test = metrics["test"]
    return {
        "dataset": dataset, "split": job.split, "seed": job.seed,
        "source": job.source, "target": job.target, "method": job.method,
        "lambda": job.weight, "mcma": job.mcma,
        "accuracy": test["acc"], "precision": test["precision"], "recall": test["recall"],
        "f1": test["f1"], "val_f1": metrics.get("val", {}).get("f1"), "refit": job.refit,
        "run": job.folder,
    }  # fmt: skip


def _check_data(config: ExperimentConfig, data: PairedDataset) -> None:
    missing = [m for m in config.modalities if m not in data.modalities]
    # a derived modality's own problems are named by derive_modalities
    missing = [m for m in missing if config.modalities[m].derive is None]
    if missing:
        raise DcatError(
            f"config: modalities {missing} are not in the data set "
            f"{config.data.dataset!r}, which has {data.modalities}"
        )
    samples = {
        (p.modality, job.target, p.base)
        for job in plan_jobs(config)
        for p in job.parts
        if not get_method(p.base).source_network
    }
    for source, target, method in sorted(samples):
        if {source, target} <= set(data.modalities) and data.shape(source) != data.shape(target):
            raise DcatError(
                f"config: transfers: {source!r} gives its samples to {target!r} (method "
                f"{method!r}), so it needs the target's shape {data.shape(target)}, got "
                f"{data.shape(source)}"
            )


def run_experiment(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    data: PairedDataset | None = None,
    log: Callable[[str], None] = print,
    retrain_changed: bool = False,
) -> Path:
    """Run the protocol and write the results folder; returns the path of ``report.md``.

    Args:
        config: The experiment.
        out_dir: Results folder (created; an existing one is completed, not overwritten).
        data: The data set, if already loaded (default: :func:`load_dataset`).
        log: Where progress lines go.
        retrain_changed: Retrain the models in ``out_dir`` that were trained with other
            settings (and those that depend on them) instead of refusing to run.

    Raises:
        DcatError: Bad input, found before anything is written: the data and reader options,
            every split, a network or method that does not fit the data (the dry run), or
            models in ``out_dir`` trained with other settings (unless ``retrain_changed``).
    """
    from dcat.experiment.report import write_report  # matplotlib only when a report is written

    out = Path(out_dir)
    data = derive_modalities(config, data) if data is not None else load_dataset(config)
    config = default_encoders(config, data, log)
    _check_data(config, data)
    _check_augmentation(config, data)
    jobs = plan_jobs(config)
    # What can be checked is checked before anything is written or trained, so a bad option
    # or a bad split of the last seed does not fail a run hours in, beside finished models.
    kinds = _normalization_kinds(config, data)
    subject_lists = [
        _subject_lists(data, split_cfg, i) for i, split_cfg in enumerate(config.splits)
    ]
    splits = {
        (i, seed): _draw_split(data, split_cfg, i, seed, subject_lists[i])
        for i, split_cfg in enumerate(config.splits)
        for seed in config.seeds
    }
    dry_run(config, data, jobs, data.subset(splits[0, config.seeds[0]].train))
    fingerprints = job_fingerprints(
        config,
        jobs,
        class_names=data.class_names,
        normalization=kinds,
        data_digests={m: data.fingerprint([m]) for m in config.modalities},
        split_digests={
            (config.splits[i].kind, seed): _split_digest(split)
            for (i, seed), split in splits.items()
        },
        split_subjects={
            split_cfg.kind: subject_lists[i] for i, split_cfg in enumerate(config.splits)
        },
    )
    mismatches = find_mismatches(out, fingerprints)
    if mismatches and not retrain_changed:
        raise DcatError(mismatch_message(out, mismatches))
    retrain = {m.run: m for m in mismatches}
    for job in jobs:  # models finished by an earlier run must fit this configuration
        run_dir = out / job.folder
        reused = job.folder not in retrain and (run_dir / "metrics.json").is_file()
        if reused and job.method == "baseline":
            _load_target(run_dir, build_net(config, data, job.target, job.seed))
    counts = np.bincount(data.labels, minlength=data.num_classes).tolist()
    out.mkdir(parents=True, exist_ok=True)
    # One run per folder: a second one would write the same checkpoints.
    lock = RunLock(out, warn=log)
    lock.acquire()
    try:
        resolved = {
            "experiment": config.to_dict(),
            "versions": versions(),
            "data": {
                "name": data.name,
                "samples": len(data),
                "classes": data.class_names,
                "class_counts": dict(zip(data.class_names, counts, strict=True)),
                "modalities": data.modalities,
            },
        }
        write_atomic(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
        log(
            f"dcat experiment {config.name!r}: {len(data)} samples of {data.name}, "
            f"{len(jobs)} models to train → {out}"
        )
        shown = ", ".join(f"{c} {n}" for c, n in zip(data.class_names, counts, strict=True))
        log(f"samples per class: {shown}")
        records: list[dict[str, Any]] = []
        started = time.perf_counter()
        done = 0
        for i, split_cfg in enumerate(config.splits):
            trained: dict[int, tuple[int, int]] = {}  # seed → its records, [first, last)
            for seed in config.seeds:
                split = splits[i, seed]
                (out / "splits").mkdir(exist_ok=True)
                split.save(
                    out / "splits" / f"{split_cfg.kind}_seed{seed}.json",
                    data.subjects,
                    data.subject_names,
                )
                train = data.subset(split.train)
                stats = _normalize(config, train)
                parts = {
                    name: data.subset(idx).normalized(stats) for name, idx in split.parts().items()
                }
                baselines: dict[str, ModalityNet] = {}
                first = len(records)
                seed_jobs = [j for j in jobs if j.split == split_cfg.kind and j.seed == seed]
                for job in seed_jobs:
                    run_dir = out / job.folder
                    t0 = time.perf_counter()
                    net = build_net(config, data, job.target, seed, plain=job.method == "plain")
                    if job.folder in retrain:
                        log(f"retraining {retrain[job.folder].describe()}")
                        shutil.rmtree(run_dir)
                    finished = (run_dir / "metrics.json").is_file()
                    if finished:
                        metrics = json.loads((run_dir / "metrics.json").read_text())
                        if job.method == "baseline":
                            baselines[job.target] = _load_target(run_dir, net)
                    else:
                        # recorded before training starts, so an interrupted run is checked too
                        write_atomic(
                            run_dir / FINGERPRINT_FILE,
                            json.dumps(fingerprints[job.folder], indent=1, sort_keys=True),
                        )
                        task = _task(
                            config, job, net, baselines, _augmentation(config, job.target, stats)
                        )
                        fit(
                            task,
                            parts["train"],
                            parts["val"],
                            config.train_config(job.target, seed),
                            run_dir,
                            test=parts["test"],
                            extra_config={"experiment": config.name, "job": job.describe()},
                            normalization=stats.get(job.target),
                        )
                        if job.method == "baseline":
                            baselines[job.target] = net.eval()
                        metrics = json.loads((run_dir / "metrics.json").read_text())
                    records.append(_record(job, metrics, data.name))
                    done += 1
                    elapsed = time.perf_counter() - started
                    eta = elapsed / done * (len(jobs) - done)
                    what = (
                        job.method if not job.source else f"{job.source}→{job.target} {job.method}"
                    )
                    lam = f" λ={job.weight:g}" if job.weight is not None else ""
                    log(
                        f"[{done}/{len(jobs)}] {job.split} seed={seed} {job.target}: {what}{lam} "
                        f"f1={records[-1]['f1']:.3f}"
                        + (" (done before)" if finished else f" ({time.perf_counter() - t0:.1f} s)")
                        + f", eta {eta / 60:.1f} min"
                    )
                trained[seed] = (first, len(records))
            if config.refit:
                # after every seed of the split: the "mean" rule's pick reads them all
                picked = mark_picks(records, config.selection)
                for seed in config.seeds:
                    first, last = trained[seed]
                    records += _refit_seed(
                        config, data, splits[i, seed], jobs, picked[first:last], fingerprints, out,
                        log,
                    )  # fmt: skip
        records = mark_picks(records, config.selection)
        _write_results(out, records)
        report = write_report(out, records, config, data)
        log(f"report: {report}")
        return report
    finally:
        lock.release()


def _refit_seed(
    config: ExperimentConfig,
    data: PairedDataset,
    split: Split,
    jobs: list[Job],
    picked: list[dict[str, Any]],
    fingerprints: dict[str, dict[str, Any]],
    out: Path,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """:func:`_refit` of one split and seed, after all its models were trained: the data parts
    and normalisation are drawn again, the source baselines loaded from their run folders."""
    seed_jobs = [j for j in jobs if j.split == split.kind and j.seed == split.seed]
    stats = _normalize(config, data.subset(split.train))
    parts = {name: data.subset(idx).normalized(stats) for name, idx in split.parts().items()}
    baselines = {
        job.target: _load_target(
            out / job.folder, build_net(config, data, job.target, split.seed)
        ).eval()
        for job in seed_jobs
        if job.method == "baseline"
    }
    everything = data.subset(np.concatenate([split.train, split.val])).normalized(stats)
    return _refit(
        config, data, seed_jobs, picked, fingerprints, out, everything, parts["val"],
        parts["test"], stats, baselines, log,
    )  # fmt: skip


def _refit(
    config: ExperimentConfig,
    data: PairedDataset,
    seed_jobs: list[Job],
    picked: list[dict[str, Any]],
    fingerprints: dict[str, dict[str, Any]],
    out: Path,
    train: PairedDataset,
    val: PairedDataset,
    test: PairedDataset,
    stats: dict[str, ChannelStats],
    baselines: dict[str, ModalityNet],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Retrain each target's baseline, plain reference and pick (``picked``: the seed's records
    marked by :func:`mark_picks`, on validation) of one split and seed on its training and
    validation parts together, for the epoch count of the original's best validation F1; their
    records (``refit`` true, no validation F1).

    Sources stay the baselines trained on the training part, and inputs keep its
    normalisation, so that a refit transfer sees its sources exactly as the original did.
    """
    # the models to ship: those of the targets (a source-only baseline is never deployed)
    targets = {t.target for t in config.transfers} or set(config.modalities)
    chosen = [
        (job, record)
        for job, record in zip(seed_jobs, picked, strict=True)
        if job.target in targets and (job.method in ("baseline", "plain") or record["pick"])
    ]
    refits = []
    for i, (job, _) in enumerate(chosen, 1):
        original = json.loads((out / job.folder / "metrics.json").read_text())
        epochs = int(original["val"]["epoch"]) + 1
        again = replace(job, refit=True)
        run_dir = out / again.folder
        fingerprint = {
            **fingerprints[job.folder],
            "refit": {"of": job.folder, "digest": digest(fingerprints[job.folder]),
                      "epochs": epochs},
        }  # fmt: skip
        recorded = run_dir / FINGERPRINT_FILE
        finished = (run_dir / "metrics.json").is_file() and recorded.is_file()
        if finished and json.loads(recorded.read_text()) != fingerprint:
            log(f"retraining {again.folder}: its original or epoch count changed")
            shutil.rmtree(run_dir)
            finished = False
        t0 = time.perf_counter()
        if not finished:
            write_atomic(recorded, json.dumps(fingerprint, indent=1, sort_keys=True))
            net = build_net(config, data, job.target, job.seed, plain=job.method == "plain")
            task = _task(config, job, net, baselines, _augmentation(config, job.target, stats))
            fit(
                task,
                train,
                val,
                replace(config.train_config(job.target, job.seed), max_epochs=epochs),
                run_dir,
                test=test,
                extra_config={"experiment": config.name, "job": again.describe()},
                normalization=stats.get(job.target),
                keep="last",
            )
        metrics = json.loads((run_dir / "metrics.json").read_text())
        refits.append(_record(again, metrics, data.name))
        what = job.method if not job.source else f"{job.source}→{job.target} {job.method}"
        log(
            f"[refit {i}/{len(chosen)}] {job.split} seed={job.seed} {job.target}: {what}, "
            f"{epochs} epochs on train + val, f1={refits[-1]['f1']:.3f}"
            + (" (done before)" if finished else f" ({time.perf_counter() - t0:.1f} s)")
        )
    return refits


def _split_digest(split: Split) -> str:
    digest = hashlib.sha256()
    for name, indices in split.parts().items():
        digest.update(name.encode())
        digest.update(np.asarray(indices, dtype=np.int64).tobytes())
    return digest.hexdigest()


def dry_run(
    config: ExperimentConfig, data: PairedDataset, jobs: list[Job], train: PairedDataset
) -> None:
    """Build every network of the plan and push one tiny batch of real training data through
    each model's task (forward, loss, backward) on the CPU, every source → target pair included.

    Args:
        config: The experiment.
        data: The data set (its shapes size the networks).
        jobs: The plan.
        train: Training samples to draw the batch from (the first split's training part).

    Raises:
        DcatError: A network or method that does not fit the data: names the model, the error
            and the shapes of the batch.
    """
    from torch.utils.data import default_collate

    count = min(_DRY_RUN_SAMPLES, len(train))
    batch = default_collate([train[i] for i in range(count)])
    shapes = ", ".join(f"{m} {tuple(x.shape)}" for m, x in batch["inputs"].items())
    baselines = {
        modality: build_net(config, data, modality, 0)
        for modality in dict.fromkeys(j.target for j in jobs if j.method == "baseline")
    }
    seen = set()
    for job in jobs:
        key = (job.target, job.method, job.source)  # λ scales the loss, never the shapes
        if key in seen:
            continue
        seen.add(key)
        what = job.target if not job.source else f"{job.source} → {job.target} {job.method}"
        net = baselines[job.target] if job.method == "baseline" else None
        try:
            plain = job.method == "plain"
            net = net if net is not None else build_net(config, data, job.target, 0, plain=plain)
            task = _task(config, job, net, baselines, _augmentation(config, job.target, {}))
            loss = task(batch)["loss"]
            loss.backward()
        except (ValueError, RuntimeError, TypeError, KeyError) as err:
            raise DcatError(
                f"dry run of the {what} model on one batch of training data ({shapes}): "
                f"{err}".replace("\n", " ")
            ) from err
        finally:
            for model in (net, *baselines.values()):
                if model is not None:
                    model.zero_grad(set_to_none=True)


_SUBJECT_LISTS = ("train_subjects", "val_subjects", "test_subjects")


def _subject_lists(
    data: PairedDataset, split_cfg: SplitConfig, index: int
) -> dict[str, list[int] | None]:
    """The subject lists of ``config.splits[index]``, written as the subjects are named in the
    data, as the data's subject ids (:func:`dcat.data.resolve_subjects`)."""
    lists: dict[str, list[int] | None] = {}
    for field in _SUBJECT_LISTS:
        written = getattr(split_cfg, field)
        lists[field] = None if written is None else resolve_subjects(
            data.subjects, data.subject_names, written, f"config: splits[{index}].{field}"
        )  # fmt: skip
    return lists


def _draw_split(
    data: PairedDataset,
    split_cfg: SplitConfig,
    index: int,
    seed: int,
    subjects: dict[str, list[int] | None],
) -> Split:
    """The split ``config.splits[index]`` at ``seed``, every class in its training part;
    ``subjects`` holds its subject lists as ids (:func:`_subject_lists`)."""
    try:
        split = make_split(
            data.labels, data.subjects, split_cfg.kind, seed=seed,
            test_size=split_cfg.test_size, val_size=split_cfg.val_size,
            train_subjects=subjects["train_subjects"], val_subjects=subjects["val_subjects"],
            test_subjects=subjects["test_subjects"], val_rotation=split_cfg.val_rotation,
            subject_names=data.subject_names,
        )  # fmt: skip
        _check_classes(data, split, split_cfg.kind, seed)
    except ValueError as err:
        raise DcatError(f"config: splits[{index}]: {err}") from err
    return split


def _check_classes(data: PairedDataset, split: Any, kind: str, seed: int) -> None:
    present = set(np.unique(data.labels[split.train]).tolist())
    absent = [data.class_names[c] for c in range(data.num_classes) if c not in present]
    if absent:
        raise DcatError(
            f"the {kind} split (seed {seed}) leaves classes without a training sample: {absent}"
        )


def _task(
    config: ExperimentConfig,
    job: Job,
    net: ModalityNet,
    baselines: dict[str, ModalityNet],
    augment: InertialAugment | None = None,
) -> UnimodalTask | TransferTask:
    if not job.parts:
        return UnimodalTask(net, job.target, augment=augment)
    repeated = len({p.modality for p in job.parts}) != len(job.parts)
    specs = [
        SourceSpec(
            # a source with several methods (a combined objective) needs a name per term
            f"{p.modality}-{p.tag}" if repeated else p.modality,
            baselines[p.modality] if get_method(p.base).source_network else None,
            modality=p.modality,
            method=p.base,
            weight=p.weight,
            options=dict(p.options),
        )
        for p in job.parts
    ]
    return TransferTask(net, job.target, specs, augment=augment)


def _write_results(out: Path, records: list[dict[str, Any]]) -> None:
    write_atomic(out / "results.json", json.dumps(records, indent=1))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_FIELDS)
    writer.writeheader()
    writer.writerows(records)
    write_atomic(out / "results.csv", buffer.getvalue())
