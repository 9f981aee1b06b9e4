"""The paper's protocol end to end (DESIGN.md §2) → a results folder.

For every split kind and seed: draw the split (saved), fit normalisation on its training part,
train a unimodal baseline per modality (each is also the frozen source of transfers from that
modality), then for every source → target pair train a fresh target with each requested method
and the λ sweep, and evaluate every model on the test part. Then write ``results.json``,
``results.csv`` and ``report.md`` with plots.

Run folder::

    OUT/config.yaml                 resolved configuration and versions
    OUT/splits/<kind>_seed<k>.json  the splits (indices and subjects)
    OUT/runs/<kind>/seed<k>/<target>/<method>/   one engine run each (checkpoints, logs, metrics)
    OUT/results.json, results.csv   one record per trained model
    OUT/report.md, OUT/*.png        tables like the paper's II–IV, plots

A finished model (its ``metrics.json`` present) is not trained again, and an interrupted one
resumes from its last checkpoint, so running the same command again completes a run.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from dcat.config import ExperimentConfig
from dcat.data import PairedDataset, make_split
from dcat.encoders import create_encoder
from dcat.engine import fit, versions
from dcat.model import ModalityNet
from dcat.tasks import SourceSpec, TransferTask, UnimodalTask
from dcat.utils import write_atomic

__all__ = ["RESULT_FIELDS", "Job", "load_dataset", "plan_jobs", "run_experiment"]

RESULT_FIELDS = [
    "dataset", "split", "seed", "source", "target", "method", "lambda", "mcma",
    "accuracy", "precision", "recall", "f1", "run",
]  # fmt: skip


def load_dataset(config: ExperimentConfig) -> PairedDataset:
    """Read the configured data set."""
    data = config.data
    options = dict(data.options)
    if data.dataset == "utd_mhad_embedded":
        from dcat.data import load_utd_mhad_embedded

        return load_utd_mhad_embedded(**options)
    if data.root is None:
        raise ValueError(f"config: data.root is required for data set {data.dataset!r}")
    root = Path(data.root).expanduser()
    if data.dataset == "utd_mhad":
        from dcat.data import load_utd_mhad

        return load_utd_mhad(root, **options)
    if data.dataset == "avletters":
        from dcat.data import load_avletters

        return load_avletters(root, **options)
    if data.dataset == "sp_sw_har":
        from dcat.data.sp_sw_har import load_sp_sw_har

        return load_sp_sw_har(root, **options)
    if data.dataset == "manifest":
        from dcat.data.manifest import load_manifest

        return load_manifest(root, **options)
    if data.dataset == "cough":
        from dcat.data.cough import load_cough

        return load_cough(root, **options)
    if data.dataset in ("uestc_mmea", "vggsound"):
        from dcat.data import load_uestc_mmea, load_vggsound

        # decoded frames are cached once, beside the data unless a folder is given
        options.setdefault("frame_cache", root / ".dcat_frames")
        loader = load_uestc_mmea if data.dataset == "uestc_mmea" else load_vggsound
        return loader(root, **options)
    raise ValueError(
        f"config: data.dataset: unknown data set {data.dataset!r}; choose from "
        "utd_mhad_embedded, utd_mhad, sp_sw_har, avletters, uestc_mmea, cough, vggsound, manifest"
    )


@dataclass(frozen=True)
class Job:
    """One model to train: a baseline (``source`` empty) or a transfer."""

    split: str
    seed: int
    target: str
    method: str  # baseline | dcat | dcat_no_mcma | logit_kd | feature | contrastive
    source: str = ""
    weight: float | None = None

    @property
    def mcma(self) -> bool | None:
        return {"dcat": True, "dcat_no_mcma": False}.get(self.method)

    @property
    def folder(self) -> str:
        if self.method == "baseline":
            tag = "baseline"
        else:
            tag = f"{self.method}_from-{self.source}_w{self.weight:g}"
        return f"runs/{self.split}/seed{self.seed}/{self.target}/{tag}"


def plan_jobs(config: ExperimentConfig) -> list[Job]:
    """Every model the configuration asks for, baselines before the transfers that use them."""
    needed = list(dict.fromkeys(m for t in config.transfers for m in (t.target, t.source)))
    if not config.transfers:
        needed = list(config.modalities)
    jobs: list[Job] = []
    for split in config.splits:
        for seed in config.seeds:
            jobs += [Job(split.kind, seed, m, "baseline") for m in needed]
            for transfer in config.transfers:
                for method in config.methods:
                    jobs.append(
                        Job(
                            split.kind,
                            seed,
                            transfer.target,
                            method,
                            transfer.source,
                            config.weight,
                        )
                    )
                for lam in config.lambdas:
                    if not ("dcat" in config.methods and lam == config.weight):
                        jobs.append(
                            Job(split.kind, seed, transfer.target, "dcat", transfer.source, lam)
                        )
    return jobs


def _in_channels(data: PairedDataset, modality: str) -> int:
    shape = data.shape(modality)
    return shape[1] if len(shape) == 4 else shape[0]  # video (F, C, H, W) or series (C, T)


def build_net(
    config: ExperimentConfig, data: PairedDataset, modality: str, seed: int
) -> ModalityNet:
    """A freshly initialised network for ``modality``; the same seed gives the same weights."""
    spec = config.modalities[modality]
    torch.manual_seed(seed)
    try:
        encoder = create_encoder(spec.encoder, _in_channels(data, modality), **spec.options)
    except ValueError as err:
        raise ValueError(f"config: modalities.{modality}: {err}") from err
    dropout = config.dropout if spec.dropout is None else spec.dropout
    return ModalityNet(encoder, d_out=config.d_out, num_classes=data.num_classes, dropout=dropout)


def _normalize(config: ExperimentConfig, train: PairedDataset) -> dict:
    kinds = config.data.normalization
    kinds = kinds if isinstance(kinds, dict) else dict.fromkeys(train.modalities, kinds)
    for modality, kind in kinds.items():
        if kind not in ("zscore", "minmax", "none"):
            raise ValueError(
                f"config: data.normalization.{modality}: must be zscore, minmax "
                f"or none, got {kind!r}"
            )
    stats = train.fit_normalization({m: k for m, k in kinds.items() if k != "none"})
    return {m: s for m, s in stats.items() if kinds.get(m, "zscore") != "none"}


def _load_target(run_dir: Path, net: ModalityNet) -> ModalityNet:
    state = torch.load(
        run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True
    )["state_dict"]
    prefix = "task.target."
    net.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return net.eval()


def _record(config: ExperimentConfig, job: Job, metrics: dict) -> dict[str, Any]:
    test = metrics["test"]
    return {
        "dataset": config.data.dataset, "split": job.split, "seed": job.seed,
        "source": job.source, "target": job.target, "method": job.method,
        "lambda": job.weight, "mcma": job.mcma,
        "accuracy": test["acc"], "precision": test["precision"], "recall": test["recall"],
        "f1": test["f1"], "run": job.folder,
    }  # fmt: skip


def _check_data(config: ExperimentConfig, data: PairedDataset) -> None:
    missing = [m for m in config.modalities if m not in data.modalities]
    if missing:
        raise ValueError(
            f"config: modalities {missing} are not in the data set "
            f"{config.data.dataset!r}, which has {data.modalities}"
        )


def run_experiment(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    data: PairedDataset | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Run the protocol and write the results folder; returns the path of ``report.md``.

    Args:
        config: The experiment.
        out_dir: Results folder (created; an existing one is completed, not overwritten).
        data: The data set, if already loaded (default: :func:`load_dataset`).
        log: Where progress lines go.
    """
    from dcat.report import write_report  # matplotlib only when a report is written

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = data if data is not None else load_dataset(config)
    _check_data(config, data)
    jobs = plan_jobs(config)
    resolved = {
        "experiment": config.to_dict(),
        "versions": versions(),
        "data": {
            "name": data.name,
            "samples": len(data),
            "classes": data.class_names,
            "modalities": data.modalities,
        },
    }
    write_atomic(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    log(
        f"dcat experiment {config.name!r}: {len(data)} samples of {data.name}, "
        f"{len(jobs)} models to train → {out}"
    )
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    done = 0
    for split_cfg in config.splits:
        for seed in config.seeds:
            split = make_split(
                data.labels, data.subjects, split_cfg.kind, seed=seed,
                test_size=split_cfg.test_size, val_size=split_cfg.val_size,
                train_subjects=split_cfg.train_subjects, val_subjects=split_cfg.val_subjects,
                test_subjects=split_cfg.test_subjects,
            )  # fmt: skip
            (out / "splits").mkdir(exist_ok=True)
            split.save(out / "splits" / f"{split_cfg.kind}_seed{seed}.json", data.subjects)
            _check_classes(data, split, split_cfg.kind, seed)
            train = data.subset(split.train)
            stats = _normalize(config, train)
            parts = {
                name: data.subset(idx).normalized(stats) for name, idx in split.parts().items()
            }
            baselines: dict[str, ModalityNet] = {}
            for job in (j for j in jobs if j.split == split_cfg.kind and j.seed == seed):
                run_dir = out / job.folder
                t0 = time.perf_counter()
                net = build_net(config, data, job.target, seed)
                finished = (run_dir / "metrics.json").is_file()
                if finished:
                    metrics = json.loads((run_dir / "metrics.json").read_text())
                    if job.method == "baseline":
                        baselines[job.target] = _load_target(run_dir, net)
                else:
                    task = _task(config, job, net, baselines)
                    fit(
                        task,
                        parts["train"],
                        parts["val"],
                        config.train_config(job.target, seed),
                        run_dir,
                        test=parts["test"],
                        extra_config={"experiment": config.name, "job": job.__dict__},
                    )
                    if job.method == "baseline":
                        baselines[job.target] = net.eval()
                    metrics = json.loads((run_dir / "metrics.json").read_text())
                records.append(_record(config, job, metrics))
                done += 1
                elapsed = time.perf_counter() - started
                eta = elapsed / done * (len(jobs) - done)
                what = job.method if not job.source else f"{job.source}→{job.target} {job.method}"
                lam = f" λ={job.weight:g}" if job.weight is not None else ""
                log(
                    f"[{done}/{len(jobs)}] {job.split} seed={seed} {job.target}: {what}{lam} "
                    f"f1={records[-1]['f1']:.3f}"
                    + (" (done before)" if finished else f" ({time.perf_counter() - t0:.1f} s)")
                    + f", eta {eta / 60:.1f} min"
                )
    _write_results(out, records)
    report = write_report(out, records, config, data)
    log(f"report: {report}")
    return report


def _check_classes(data: PairedDataset, split: Any, kind: str, seed: int) -> None:
    present = set(np.unique(data.labels[split.train]).tolist())
    absent = [data.class_names[c] for c in range(data.num_classes) if c not in present]
    if absent:
        raise ValueError(
            f"the {kind} split (seed {seed}) leaves classes without a training sample: {absent}"
        )


def _task(
    config: ExperimentConfig, job: Job, net: ModalityNet, baselines: dict[str, ModalityNet]
) -> UnimodalTask | TransferTask:
    if job.method == "baseline":
        return UnimodalTask(net, job.target)
    source = baselines[job.source]
    method = {"dcat": "dcat", "dcat_no_mcma": "dcat"}.get(job.method, job.method)
    spec = SourceSpec(
        job.source,
        source,
        method=method,
        weight=float(job.weight),
        mcma=job.mcma is not False,
        temperature=config.temperature if method == "logit_kd" else None,
    )
    return TransferTask(net, job.target, [spec])


def _write_results(out: Path, records: list[dict[str, Any]]) -> None:
    write_atomic(out / "results.json", json.dumps(records, indent=1))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_FIELDS)
    writer.writeheader()
    writer.writerows(records)
    write_atomic(out / "results.csv", buffer.getvalue())
