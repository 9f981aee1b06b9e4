"""The Lightning engine: fit / validate / test any dcat task, with checkpoints, loggers, DDP.

A thin wrapper. The objective lives in the task (:mod:`dcat.training.tasks`, framework-free);
Lightning
runs the loop, precision, distribution, checkpoints and progress; torchmetrics computes
accuracy and macro precision, recall, F1 and the confusion matrix of the target alone.

:func:`fit` writes a run folder (:class:`dcat.training.run_folder.RunFolder`, which names its
checkpoints and metrics), and beside them:

    run_dir/
      config.yaml             the resolved configuration, task description and versions
      logs/                   CSV metrics (or TensorBoard events / an MLflow file store)
      model_card.json         what deployment needs: classes, input, rate, normalisation, network
      examples.npy            a few validation inputs of the target, for export parity checks
"""

from __future__ import annotations

import functools
import io
import math
import os
import signal
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, cast

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.types import LRSchedulerConfigType, OptimizerLRSchedulerConfig
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

import dcat
from dcat.data.mixing import MixedBatchSampler
from dcat.data.protocol import TrainingData
from dcat.errors import DcatError
from dcat.io.atomic import write_atomic
from dcat.io.card import ModelCard
from dcat.io.interrupt import Interrupted
from dcat.nn.labels import UNLABELLED
from dcat.nn.weights import load_torch_file
from dcat.training.cache import SourceCache
from dcat.training.checkpoints import SafeCheckpointIO, csv_logger, resume_epoch
from dcat.training.config import TrainConfig
from dcat.training.provenance import versions
from dcat.training.run_folder import SOURCE_PREFIX, RunFolder
from dcat.training.tasks import TransferTask, UnimodalTask

__all__ = [
    "DCATModule",
    "PairedDataModule",
    "RunResult",
    "TrainConfig",
    "evaluate",
    "fit",
    "versions",
]

Task = UnimodalTask | TransferTask


def _metrics(num_classes: int, prefix: str, *, f1_only: bool = False) -> MetricCollection:
    f1 = MulticlassF1Score(num_classes, average="macro")
    if f1_only:
        return MetricCollection({"f1": f1}, prefix=prefix)
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1": f1,
        },
        prefix=prefix,
    )


def cosine_warmup(step: int, total: int, warmup: int) -> float:
    """The learning-rate factor of the ``cosine`` schedule at optimisation step ``step``.

    Linear warm-up, ``(step + 1) / warmup`` for the first ``warmup`` steps (the first step
    already learns), then half a cosine from 1 down to 0 at step ``total``.

    Args:
        step: 0-based optimisation step.
        total: Steps of the whole training (epochs × batches per epoch).
        warmup: Warm-up steps (0: none).

    Returns:
        The factor in ``[0, 1]`` that multiplies the peak learning rate.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class DCATModule(L.LightningModule):
    """LightningModule around a task: logs its loss dict, evaluates the target alone.

    Args:
        task: A :class:`~dcat.training.tasks.UnimodalTask` or
            :class:`~dcat.training.tasks.TransferTask`.
        lr: Learning rate (the peak of a schedule).
        weight_decay: Weight decay (decoupled for ``adamw``).
        optimizer: ``"adam"`` or ``"adamw"``.
        schedule: ``"constant"`` or ``"cosine"`` (:func:`cosine_warmup`, stepped per batch).
        warmup_epochs: Warm-up epochs of the ``cosine`` schedule.

    Frozen sources are left out of checkpoints (they are inputs to the run, not its product,
    and can be large); loading a checkpoint takes them from the task given here.
    """

    def __init__(
        self,
        task: Task,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        *,
        optimizer: Literal["adam", "adamw"] = "adam",
        schedule: Literal["constant", "cosine"] = "constant",
        warmup_epochs: int = 0,
    ) -> None:
        super().__init__()
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer_name, self.schedule, self.warmup_epochs = optimizer, schedule, warmup_epochs
        num_classes = task.target.num_classes
        # validation picks the epoch by F1 and nothing reads its other scores: updating and
        # logging three more cost a small model's epoch milliseconds
        self.val_metrics = _metrics(num_classes, "val/", f1_only=True)
        self.test_metrics = _metrics(num_classes, "test/")
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        # the model card (dcat.io.card) travels inside every checkpoint, so one file is exportable
        self.card: dict[str, Any] | None = None

    def training_step(self, batch: Mapping, batch_idx: int) -> torch.Tensor:
        out = self.task(batch)
        batch_size = len(batch["label"])
        # the loss is logged per step only where Lightning writes a row (or a progress bar
        # shows it), and every component is summed here and logged once per epoch: Lightning's
        # per-key, per-step bookkeeping costs more than a small target's whole step
        trainer = self._trainer
        # the Trainer sets log_every_n_steps on itself (through its logger connector), undeclared
        every = cast(Any, trainer).log_every_n_steps if trainer is not None else 1
        shown = trainer is not None and trainer.progress_bar_callback is not None
        if shown or (every and (self.global_step + 1) % every == 0):
            self.log("train/loss_step", out["loss"].detach(), batch_size=batch_size,
                     prog_bar=True, on_step=True, on_epoch=False)  # fmt: skip
        for key, value in out.items():
            if key != "logits":
                total = self._sums.get(key)
                weighted = value.detach() * batch_size
                self._sums[key] = weighted if total is None else total + weighted
        self._count += batch_size
        return out["loss"]

    def on_train_epoch_start(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self.task.epoch = self.current_epoch  # a task that pretrains (virtual samples) reads it

    def on_train_epoch_end(self) -> None:
        if self._count:
            names = {"loss": "train/loss_epoch"}
            means = {names.get(k, f"train/{k}"): v / self._count for k, v in self._sums.items()}
            self.log_dict(means, sync_dist=True)

    def _evaluate(self, batch: Mapping, metrics: MetricCollection, stage: str) -> torch.Tensor:
        logits = self.task.predict(batch)
        loss = F.cross_entropy(logits, batch["label"])
        metrics.update(logits, batch["label"])
        self.log(f"{stage}/ce", loss, batch_size=len(batch["label"]), sync_dist=True)
        return logits

    def on_validation_epoch_start(self) -> None:
        self._val_ce = torch.zeros((), device=self.device)
        self._val_count = 0

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        # the cross-entropy is summed and logged once, as train's components are
        logits = self.task.predict(batch)
        labels = batch["label"]
        self._val_ce += F.cross_entropy(logits, labels, reduction="sum")
        self._val_count += len(labels)
        self.val_metrics.update(logits, labels)

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=True)  # torchmetrics syncs ranks
        if self._val_count:
            self.log("val/ce", self._val_ce / self._val_count, sync_dist=True)
        self.val_metrics.reset()

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        logits = self._evaluate(batch, self.test_metrics, "test")
        self.test_confusion.update(logits, batch["label"])

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()
        self.confusion_matrix = self.test_confusion.compute().cpu().numpy().astype(int).tolist()
        self.test_confusion.reset()

    def configure_optimizers(self) -> torch.optim.Optimizer | OptimizerLRSchedulerConfig:
        params = [p for p in self.task.parameters() if p.requires_grad]
        kind = torch.optim.AdamW if self.optimizer_name == "adamw" else torch.optim.Adam
        optimizer = kind(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.schedule == "constant":
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        # an int once fit starts: the Trainer resolves its limits first (its fit loop asserts it)
        epochs = cast(int, self.trainer.max_epochs)
        warmup = round(self.warmup_epochs * total / max(1, epochs))
        factor = functools.partial(cosine_warmup, total=total, warmup=warmup)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        schedule: LRSchedulerConfigType = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith(SOURCE_PREFIX)]:
            del state[key]
        # Lightning does not keep the global RNG; dropout after a resume must continue the same
        # stream for the resumed run to equal an uninterrupted one
        checkpoint["dcat_rng"] = {"torch": torch.get_rng_state()}
        if self.card is not None:
            checkpoint["dcat_card"] = self.card
        if torch.cuda.is_available():
            checkpoint["dcat_rng"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # put the given sources back so strict loading still checks every target weight
        for key, value in self.state_dict().items():
            if key.startswith(SOURCE_PREFIX):
                checkpoint["state_dict"].setdefault(key, value)
        rng = checkpoint.get("dcat_rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])


class PairedDataModule(L.LightningDataModule):
    """Loaders over paired datasets, shuffled by ``(seed, epoch)`` so resuming is exact.

    Training uses a :class:`~torch.utils.data.DistributedSampler` in every case (one replica
    without DDP): its permutation depends only on the seed and the epoch, so an epoch run after
    resuming sees the same order as in an uninterrupted run, and under DDP each rank gets its
    share of the same global permutation. A training set with unlabelled samples is drawn by a
    :class:`~dcat.data.mixing.MixedBatchSampler` instead (``batch_size`` labelled and
    ``unlabelled_ratio · batch_size`` unlabelled samples a batch, an epoch one pass over the
    labelled ones), with the same guarantees.
    """

    def __init__(
        self,
        train: Dataset | None = None,
        val: Dataset | None = None,
        test: Dataset | None = None,
        *,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        unlabelled_ratio: float = 1.0,
    ) -> None:
        super().__init__()
        self.train_set, self.val_set, self.test_set = train, val, test
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.unlabelled_ratio = unlabelled_ratio

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise DcatError("no dataset given for this stage")
        trainer = self.trainer
        sampler: DistributedSampler[Any] = DistributedSampler(
            dataset,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
            shuffle=shuffle,
            seed=self.seed,
        )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        labels = _labels_of(self.train_set)
        if labels is None or not (labels == UNLABELLED).any():
            return self._loader(self.train_set, shuffle=True)
        assert self.train_set is not None  # it has labels
        trainer = self.trainer
        batches = MixedBatchSampler(
            labels, self.batch_size, self.unlabelled_ratio, seed=self.seed,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )  # fmt: skip
        return DataLoader(
            self.train_set,
            batch_sampler=batches,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)


@dataclass
class RunResult:
    """What :func:`fit` produced.

    Attributes:
        run_dir: The run folder.
        best_checkpoint: Path of the best-validation-F1 checkpoint.
        last_checkpoint: Path of the last-epoch checkpoint.
        val: Best validation metrics (``acc``, ``precision``, ``recall``, ``f1``).
        test: Test metrics of the best checkpoint, with ``confusion_matrix``; empty without test.
    """

    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    val: dict[str, float]
    test: dict[str, Any]


def describe_task(task: Task) -> dict[str, Any]:
    """A plain description of a task for the saved configuration."""
    description: dict[str, Any] = {
        "kind": type(task).__name__,
        "target_modality": task.modality,
        "num_classes": task.target.num_classes,
        "d_out": task.target.d_out,
    }
    if isinstance(task, TransferTask):
        description["sources"] = [
            {
                "name": s.name,
                "modality": s.modality,
                "method": s.method,
                "weight": s.weight,
                "mcma": task.method(s.name).config.get("mcma"),
                "temperature": s.options.get("temperature", 1.0),
                "cached": task.cached(s.name),
            }
            for s in task.specs
        ]
        # Every option of each source's method (e.g. contrastive's projection size), by source.
        description["method_options"] = {s.name: dict(s.options) for s in task.specs}
    return description


def _logger(config: TrainConfig, run_dir: Path, keep_through_epoch: int | None = None) -> Any:
    if config.logger == "none":
        return False
    if config.logger == "csv":
        return csv_logger(run_dir, keep_through_epoch)
    if config.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir=run_dir, name="logs", version="")
    from lightning.pytorch.loggers import MLFlowLogger

    # a local file store needs no server or database; MLflow 3 asks for this explicit opt-in
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

    return MLFlowLogger(
        experiment_name="dcat", tracking_uri=(run_dir / "mlruns").resolve().as_uri()
    )


class _BestCheckpoint(ModelCheckpoint):
    """Lightning's checkpoint callback, writing ``last.ckpt`` after every finished epoch (not
    only where a best checkpoint was written), at most once every ``every_s`` seconds, and
    keeping in memory the weights of the best checkpoint it writes: reading it back at the end
    of a fit cost more than a small model's test.

    Between writes ``last.ckpt`` is skipped (and is dumped afresh when next due) and a new best
    checkpoint is held in memory (:class:`SafeCheckpointIO`), written just before the next
    ``last.ckpt``; so the files on disk are always of finished epochs, the best never newer
    than the last. The final epoch's are always written. Its name is its checkpoint state's
    key: renaming it would cut a resumed run from its best score so far.
    """

    CHECKPOINT_NAME_LAST = RunFolder(Path()).last.stem  # Lightning's default, as RunFolder reads
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int = -1

    def __init__(self, *args: Any, every_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.every_s = every_s
        self._written_at = -math.inf  # the first epoch's are written

    # Lightning writes last.ckpt only at a step where it wrote a best checkpoint too; a resume
    # must continue from the last finished epoch, improved or not. Lightning saves at the end
    # of validation or of the training epoch (whichever it chose): last.ckpt follows it there.

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_too(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_too(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if (writer := self._writer(trainer)) is not None:
            writer.flush()  # a best held when a fit stopped some other way

    def _save_last_too(self, trainer: L.Trainer) -> None:
        skip = not self.save_last or self._should_skip_saving_checkpoint(trainer)
        # (the due check first: the candidates are a deep copy of the logged metrics)
        if not skip and (self._writer(trainer) is None or self._due(trainer)):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        last = Path(filepath).stem == self.CHECKPOINT_NAME_LAST
        writer = self._writer(trainer)
        due = writer is None or self._due(trainer)
        if last and not due:
            return
        if writer is None:
            super()._save_checkpoint(trainer, filepath)
        else:
            writer.holding = not due
            try:
                if last:
                    writer.flush()
                super()._save_checkpoint(trainer, filepath)
            finally:
                writer.holding = False
        if last:
            self._written_at = time.monotonic()
        if filepath == self.best_model_path:
            state = trainer.lightning_module.state_dict()
            self.best_state = {
                k: v.detach().clone() for k, v in state.items() if not k.startswith(SOURCE_PREFIX)
            }
            self.best_epoch = trainer.current_epoch

    def _due(self, trainer: L.Trainer) -> bool:
        """Whether this epoch's checkpoints are written now (rank 0 decides for all: every
        rank takes part in a save)."""
        epochs = trainer.max_epochs
        final = trainer.should_stop or (epochs is not None and trainer.current_epoch + 1 >= epochs)
        due = final or time.monotonic() - self._written_at >= self.every_s
        return bool(trainer.strategy.broadcast(due))

    @staticmethod
    def _writer(trainer: L.Trainer) -> SafeCheckpointIO | None:
        """dcat's checkpoint writer; ``None`` under a strategy that writes its own (every
        epoch's checkpoints are then written at once)."""
        writer = trainer.strategy.checkpoint_io
        return writer if isinstance(writer, SafeCheckpointIO) else None


def _device(config: TrainConfig) -> torch.device:
    gpu = config.accelerator in ("gpu", "cuda") or (
        config.accelerator == "auto" and torch.cuda.is_available()
    )
    return torch.device("cuda" if gpu else "cpu")


def attach_source_caches(
    task: TransferTask, train: Dataset, config: TrainConfig, *, progress: bool = True
) -> None:
    """Build (or reload) a cache of every source over ``train`` and attach it to the task;
    a source that already has one attached keeps it."""
    device = _device(config)
    autocast = torch.bfloat16 if str(config.precision).startswith("bf16") else None
    for spec in task.specs:
        if "outputs" not in task.method(spec.name).inputs or task.cached(spec.name):
            continue  # a method that reads no network outputs: nothing to cache
        source = task.source(spec.name)  # a method that reads outputs has one (SourceSpec)
        source.to(device)

        def report(done: int, total: int, name: str = spec.name) -> None:
            if progress and (done == total or done % (20 * config.batch_size) < config.batch_size):
                print(f"  caching source {name}: {done}/{total} samples", flush=True)

        # building draws from torch's RNG (its loader's seed) and loading from disk does not:
        # neither may shift the training's random stream, or a model would depend on whether
        # its cache was built, reloaded or shared with an earlier model
        with torch.random.fork_rng(devices=[]):
            cache = SourceCache.build(
                source,
                train,
                spec.input_key,
                dtype=getattr(torch, config.cache_dtype),
                batch_size=max(config.batch_size, 64),
                device=device,
                autocast_dtype=autocast,
                cache_dir=config.cache_dir,
                progress=report,
            )
        task.attach_cache(spec.name, cache.to(device) if device.type == "cuda" else cache)


def _trainer(config: TrainConfig, run_dir: Path | None, callbacks: list, logger: Any) -> L.Trainer:
    return L.Trainer(
        max_epochs=config.max_epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        precision=config.precision,
        sync_batchnorm=config.sync_batchnorm,
        deterministic=config.deterministic,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        logger=logger,
        callbacks=callbacks,
        default_root_dir=run_dir,
        log_every_n_steps=config.log_every_n_steps,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # PairedDataModule shards with its own sampler
        plugins=[SafeCheckpointIO()],
    )


@contextmanager
def _interrupts_kept() -> Iterator[None]:
    """Lightning ends an interrupted ``fit`` or ``test`` with ``sys.exit``: code 1 after Ctrl-C
    (its "graceful shutdown"), none (exit 0, success to a scheduler) after SIGTERM. Raise the
    interrupt instead (:class:`~dcat.io.interrupt.Interrupted`), so callers' clean-up runs and
    the command names the signal and exits 130 or 143."""
    try:
        yield
    except SIGTERMException:  # no handler of dcat's ran first (a library caller's process)
        raise Interrupted(signal.SIGTERM) from None
    except SystemExit as exit_:
        if isinstance(exit_.__context__, KeyboardInterrupt):
            raise Interrupted.of(exit_.__context__) from None
        raise


def fit(
    task: Task,
    train: Dataset,
    val: Dataset,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    test: Dataset | None = None,
    resume: bool = True,
    extra_config: Mapping[str, Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
    normalization: Any | None = None,
    keep: Literal["best", "last"] = "best",
) -> RunResult:
    """Train ``task`` and keep the best (validation macro-F1) and last checkpoints.

    Args:
        task: The objective; its target is trained in place and holds the best weights after.
        train: Training items (see :mod:`dcat.data`); sources' caches are built over it.
        val: Validation items (model selection).
        config: Training options.
        run_dir: The run folder (created).
        test: If given, the best checkpoint is evaluated on it.
        resume: Continue from ``run_dir/checkpoints/last.ckpt`` when it exists (to
            ``config.max_epochs``).
        extra_config: Anything else to record in ``config.yaml`` (data set, split, ...).
        callbacks: More Lightning callbacks (early stopping, timers, ...).
        normalization: The :class:`~dcat.data.ChannelStats` the target's inputs were normalised
            with (fitted on the training split), recorded in the model card for deployment.
        keep: ``"best"``: ``best.ckpt`` is the epoch of best validation F1; ``"last"``: it is
            the last epoch (a refit on training and validation data, whose epoch count was
            chosen before; its validation F1 is then not a held-out score and is not kept).

    Returns:
        :class:`RunResult`.
    """
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    last = folder.last
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(config.seed, workers=True, verbose=False)
    _check_labels(task, train, val, test)
    train = _learnable(task, train)
    if isinstance(task, TransferTask) and config.cache_sources:
        attach_source_caches(task, train, config, progress=config.progress)
    _write_run_config(run_dir, task, config, extra_config)
    # loaders carry only what the task reads: a cached video source costs nothing per step
    train = _only(train, task.required_modalities())
    val = _only(val, [task.modality])
    test = _only(test, [task.modality]) if test is not None else None
    _label_smoothing(task, config)
    module = _module(task, config)
    _attach_card(module, train, val, normalization, run_dir, extra_config)
    data = PairedDataModule(
        train,
        val,
        test,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        seed=config.seed,
        unlabelled_ratio=config.unlabelled_ratio,
    )
    checkpoint = _checkpoint_callback(folder, keep, config.checkpoint_every_s)
    resume_from = last if resume and last.is_file() else None
    resumed_epoch = resume_epoch(resume_from) if resume_from is not None else None
    logger = _logger(config, run_dir, keep_through_epoch=resumed_epoch)
    trainer = _trainer(config, run_dir, [checkpoint, *callbacks], logger)
    _run_fit(trainer, module, data, resume_from)
    best, best_weights, val_metrics = _best_of(checkpoint, folder)
    if keep == "last":
        val_metrics = {"epoch": val_metrics["epoch"]}
    module.load_state_dict(_with_sources(best_weights, module), strict=True)
    test_metrics: dict[str, Any] = {}
    if test is not None:
        test_metrics = _test(module, data, config)
    result = {"val": val_metrics, "test": test_metrics, "best_checkpoint": str(best.name)}
    if trainer.is_global_zero:
        folder.write_metrics(result)
    return RunResult(run_dir, best, last, val_metrics, test_metrics)


def _check_labels(task: Task, train: Dataset, val: Dataset, test: Dataset | None) -> None:
    """Refuse unlabelled samples where a label is read (validation, test, a task without a
    source), before anything is written; tell a transfer task whether its batches hold any."""
    for part, dataset in (("validation", val), ("test", test)):
        labels = _labels_of(dataset)
        if labels is not None and (labels == UNLABELLED).any():
            first = int(np.flatnonzero(labels == UNLABELLED)[0])
            raise DcatError(
                f"the {part} data has {int((labels == UNLABELLED).sum())} samples without a "
                f"label (the first: {_recording(dataset, first)}); {part} samples need labels"
            )
    labels = _labels_of(train)
    if labels is None:
        return
    if isinstance(task, TransferTask):
        task.partly_labelled = bool((labels == UNLABELLED).any())
    if not labels.size or not (labels == UNLABELLED).all():
        return
    needs = (
        [s.method for s in task.specs if not task.method(s.name).takes_unlabelled]
        if isinstance(task, TransferTask)
        else ["cross-entropy alone (no source)"]
    )
    if needs:
        raise DcatError(
            f"the training data has no labelled sample, and {', '.join(needs)} learns from "
            f"labels only: give methods that learn without them (e.g. logit_kd, pseudo_label)"
        )


def learns_unlabelled(task: Task) -> bool:
    """Whether ``task`` learns from unlabelled training samples (a transfer method of it
    does); otherwise :func:`fit` trains it on the labelled samples only."""
    return isinstance(task, TransferTask) and any(
        task.method(s.name).takes_unlabelled for s in task.specs
    )


def _learnable(task: Task, train: Dataset) -> Dataset:
    """``train`` without its unlabelled samples when nothing in ``task`` learns from them (a
    model without a source, label-only methods): they would cost steps and teach nothing. The
    epoch's step count is the same either way (one pass over the labelled samples)."""
    labels = _labels_of(train)
    if labels is None or not (labels == UNLABELLED).any() or learns_unlabelled(task):
        return train
    subset = getattr(train, "subset", None)
    if subset is None:  # a user's data set: the cross-entropy skips them
        return train
    if isinstance(task, TransferTask):
        task.partly_labelled = False
    return cast(Dataset, subset(np.flatnonzero(labels != UNLABELLED)))


def _labels_of(dataset: Dataset | None) -> np.ndarray | None:
    labels = getattr(dataset, "labels", None)
    return np.asarray(labels) if labels is not None else None


def _recording(dataset: Dataset | None, index: int) -> str:
    recordings = getattr(dataset, "recordings", None)
    return f"recording {recordings[index]!r}" if recordings is not None else f"sample {index}"


def _write_run_config(
    run_dir: Path, task: Task, config: TrainConfig, extra_config: Mapping[str, Any] | None
) -> None:
    """Write ``run_dir/config.yaml``: the training options, the task, versions and extras."""
    resolved = {
        "train": asdict(config),
        "task": describe_task(task),
        "versions": versions(),
        "threads": torch.get_num_threads(),  # a CPU run's metrics depend on it
        **dict(extra_config or {}),
    }
    write_atomic(RunFolder(run_dir).config, yaml.safe_dump(resolved, sort_keys=False))


def _module(task: Task, config: TrainConfig) -> DCATModule:
    """The Lightning module of ``task`` with ``config``'s optimiser and schedule."""
    return DCATModule(
        task,
        lr=config.lr,
        weight_decay=config.weight_decay,
        optimizer=config.optimizer,
        schedule=config.schedule,
        warmup_epochs=config.warmup_epochs,
    )


def _attach_card(
    module: DCATModule,
    train: Dataset,
    val: Dataset,
    normalization: Any | None,
    run_dir: Path,
    extra_config: Mapping[str, Any] | None,
) -> None:
    """Give ``module`` its model card (kept in its checkpoints); rank 0 also writes the card
    and the validation examples to ``run_dir``, since every rank would write the same files.

    Args:
        module: The module to train; its ``card`` is set (``None`` when the target cannot be
            rebuilt by name).
        train: The training items the card's shape, rate and classes are read from.
        val: The validation items the parity-check examples are drawn from.
        normalization: The target's :class:`~dcat.data.ChannelStats`, or ``None``.
        run_dir: The run folder.
        extra_config: The run's extras (its ``experiment`` and ``job`` go in the card).
    """
    task = module.task
    card = describe_model(task, train, normalization, run_dir, extra_config)
    # Lightning sets the function's ``rank`` at import; its annotations do not declare it
    if card is not None and cast(Any, rank_zero_only).rank == 0:
        card.save(run_dir / "model_card.json")
        _save_examples(val, task.modality, run_dir / "examples.npy")
    module.card = card.to_dict() if card is not None else None


def _checkpoint_callback(
    folder: RunFolder, keep: Literal["best", "last"], every_s: float = 0.0
) -> _BestCheckpoint:
    """The callback that writes ``folder``'s best (per ``keep``) and last checkpoints, at most
    once every ``every_s`` seconds (:class:`_BestCheckpoint`).

    Raises:
        DcatError: ``keep`` is neither ``"best"`` nor ``"last"``.
    """
    if keep not in ("best", "last"):
        raise DcatError(f"keep must be 'best' or 'last', got {keep!r}")
    return _BestCheckpoint(
        dirpath=folder.checkpoints,
        filename=folder.best.stem,
        monitor="val/f1" if keep == "best" else None,
        mode="max",
        save_last=True,
        enable_version_counter=False,
        every_s=every_s,
    )


def _run_fit(
    trainer: L.Trainer, module: DCATModule, data: PairedDataModule, resume_from: Path | None
) -> None:
    """``trainer.fit``, resumed from ``resume_from`` when given; an interrupt is raised as
    :class:`~dcat.io.interrupt.Interrupted` (see :func:`_interrupts_kept`)."""
    with warnings.catch_warnings():
        # the frozen sources are in eval mode on purpose
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        with _interrupts_kept():
            trainer.fit(module, datamodule=data, ckpt_path=resume_from, weights_only=True)


def _best_of(
    checkpoint: _BestCheckpoint, folder: RunFolder
) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """The best checkpoint's path, its weights and its validation metrics (F1 and epoch).

    The weights are taken from memory when this fit wrote the best checkpoint, else read
    from the file an earlier run wrote before this one resumed.
    """
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else folder.best
    if checkpoint.best_state is not None:  # written by this fit: its weights are in memory
        score = checkpoint.best_model_score
        val_metrics = {
            "f1": math.nan if score is None else float(score),
            "epoch": int(checkpoint.best_epoch),
        }
        return best, checkpoint.best_state, val_metrics
    # written before a resume
    best_state = load_torch_file(best)
    return best, best_state["state_dict"], _best_val_metrics(best_state)


def _label_smoothing(task: Task, config: TrainConfig) -> None:
    """``config.label_smoothing``, when set, becomes the task's (its training cross-entropy)."""
    if not config.label_smoothing:
        return
    if task.label_smoothing not in (0.0, config.label_smoothing):
        raise DcatError(
            f"the task has label_smoothing {task.label_smoothing} and the training options "
            f"{config.label_smoothing}: set one of them"
        )
    task.label_smoothing = config.label_smoothing


def describe_model(
    task: Task,
    dataset: Dataset,
    normalization: Any | None = None,
    run_dir: Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ModelCard | None:
    """The :class:`~dcat.io.card.ModelCard` of ``task``'s target trained on ``dataset``.

    Class names, sample shape, rate and channel names come from a
    :class:`~dcat.data.PairedDataset` (generic names and the first item's shape otherwise).
    Returns ``None`` when the target's encoder was not built by name (it cannot be rebuilt).
    """
    try:
        architecture = task.target.architecture()
    except ValueError:
        return None
    modality = task.modality
    if isinstance(dataset, TrainingData):
        shape, stream = dataset.shape(modality), dataset.stream(modality)
        names = dataset.class_names or [str(i) for i in range(task.target.num_classes)]
    else:
        shape, stream = tuple(dataset[0]["inputs"][modality].shape), None
        names = [str(i) for i in range(task.target.num_classes)]
    run: dict[str, Any] = {"dir": str(run_dir) if run_dir is not None else None}
    for key in ("experiment", "job"):
        if extra and key in extra:
            run[key] = extra[key]
    return ModelCard(
        modality=modality,
        class_names=list(names),
        input_shape=[int(n) for n in shape],
        rate_hz=stream.rate_hz if stream is not None else None,
        recording_rate_hz=stream.recording_rate_hz if stream is not None else None,
        channels=list(stream.channels) if stream is not None and stream.channels else None,
        normalization=normalization.to_dict() if normalization is not None else None,
        architecture=architecture,
        dcat_version=dcat.__version__,
        run=run,
        note=stream.note if stream is not None else "",
        kind="video" if len(shape) == 4 else (stream.kind if stream is not None else "series"),
        value_range=(
            list(stream.value_range)
            if stream is not None and stream.value_range is not None
            else None
        ),
    )


def _save_examples(dataset: Dataset, modality: str, path: Path, limit_bytes: int = 8 << 20) -> None:
    """Up to 16 inputs of ``modality`` (at most ``limit_bytes``), for export parity checks."""
    first = np.asarray(dataset[0]["inputs"][modality], dtype=np.float32)
    # the engine's data sets are sized (their sampler counts them too)
    count = int(min(16, len(cast(Sized, dataset)), max(1, limit_bytes // max(first.nbytes, 1))))
    rest = [np.asarray(dataset[i]["inputs"][modality], dtype=np.float32) for i in range(1, count)]
    buffer = io.BytesIO()
    np.save(buffer, np.stack([first, *rest]), allow_pickle=False)
    write_atomic(path, buffer.getvalue())


def _only(dataset: Dataset, modalities: list[str]) -> Dataset:
    if isinstance(dataset, TrainingData):  # its selection is of its own class (a Dataset)
        return cast(Dataset, dataset.select(modalities))
    return dataset


def _with_sources(state: dict[str, torch.Tensor], module: DCATModule) -> dict[str, torch.Tensor]:
    merged = dict(state)
    for key, value in module.state_dict().items():
        if key.startswith(SOURCE_PREFIX):
            merged.setdefault(key, value)
    return merged


def _best_val_metrics(checkpoint: Mapping[str, Any]) -> dict[str, float]:
    for callback_state in checkpoint.get("callbacks", {}).values():
        if "best_model_score" in callback_state and callback_state["best_model_score"] is not None:
            score = float(callback_state["best_model_score"])
            return {"f1": score, "epoch": int(checkpoint.get("epoch", -1))}
    return {"f1": math.nan, "epoch": int(checkpoint.get("epoch", -1))}


def _test(module: DCATModule, data: PairedDataModule, config: TrainConfig) -> dict[str, Any]:
    """Test metrics of ``module`` on ``data``'s test set, with its confusion matrix.

    A single process evaluates the whole test set, so every sample counts exactly once. A
    plain loop under ``torch.no_grad``: a second Trainer per model cost more than the test of
    a small one (its set-up, hooks and banners)."""
    if config.precision not in _LOOP_PRECISIONS:  # what Lightning's precision plugins do
        single = TrainConfig(**{**asdict(config), "devices": 1, "strategy": "auto"})
        trainer = _trainer(single, None, [], False)
        with _interrupts_kept():
            (scores,) = trainer.test(module, dataloaders=_test_loader(data), verbose=False)
        out: dict[str, Any] = {k.removeprefix("test/"): float(v) for k, v in scores.items()}
        out["confusion_matrix"] = module.confusion_matrix
        return out
    device = _device(config)
    autocast = _LOOP_PRECISIONS[config.precision]
    module.to(device).eval()
    metrics, confusion = module.test_metrics.to(device), module.test_confusion.to(device)
    ce_sum, count = torch.zeros((), dtype=torch.float64, device=device), 0
    with torch.no_grad():
        for batch in _test_loader(data):
            batch = move_data_to_device(batch, device)
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                logits = module.task.predict(batch)
            logits = logits.float()
            labels = batch["label"]
            ce_sum += F.cross_entropy(logits, labels, reduction="sum").double()
            count += len(labels)
            metrics.update(logits, labels)
            confusion.update(logits, labels)
    out = {k.removeprefix("test/"): float(v) for k, v in metrics.compute().items()}
    out["ce"] = float(ce_sum / max(count, 1))
    out["confusion_matrix"] = confusion.compute().cpu().numpy().astype(int).tolist()
    metrics.reset()
    confusion.reset()
    return out


# precision → autocast dtype of the test loop (None: float32 as it is)
_LOOP_PRECISIONS: dict[str, torch.dtype | None] = {
    "32": None, "32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16,
}  # fmt: skip


def _test_loader(data: PairedDataModule) -> DataLoader:
    """The whole test set in order, on one process (whatever the training's world size)."""
    if data.test_set is None:
        raise DcatError("no dataset given for this stage")
    sampler: DistributedSampler[Any] = DistributedSampler(
        data.test_set, num_replicas=1, rank=0, shuffle=False
    )
    return DataLoader(
        data.test_set, batch_size=data.batch_size, sampler=sampler, num_workers=data.num_workers
    )


def evaluate(task: Task, dataset: Dataset, config: TrainConfig | None = None) -> dict[str, Any]:
    """Accuracy, macro precision, recall, F1, CE and confusion matrix of the task's target.

    Args:
        task: Its target is evaluated alone, as deployed.
        dataset: Items with the target's modality and labels.
        config: Batch size, accelerator and precision (defaults: CPU, float32).
    """
    config = config or TrainConfig(progress=False)
    module = DCATModule(task)
    data = PairedDataModule(
        test=_only(dataset, [task.modality]), batch_size=config.batch_size, seed=config.seed
    )
    return _test(module, data, config)
