"""Seconds per training epoch: unimodal target vs D-CAT with the source run every step vs cached.

A video-like source (per-frame ResNet over 30 frames) is far heavier than the IMU target, so
running it every step dominates a transfer epoch; the source cache (dcat.training.cache) runs it
once.
Prints one JSON object on its last line::

    {"unimodal_s", "transfer_uncached_s", "transfer_cached_s", "transfer_cached_recomputed_s",
     "cached_over_unimodal", "uncached_over_cached", "recomputed_over_cached", ...}

Each epoch runs through the real engine (``dcat.training.engine.fit``). The configurations are
interleaved: every round trains each of them for one warm-up and one timed epoch, so they share
the machine's load, and the figures are medians over rounds. A fourth configuration withholds
the cache's ``‖K_aᵀV_a‖²`` (D-CAT then recomputes the frozen source's own term every step), so
``recomputed_over_cached`` is what caching that term saves. ``loss_s_per_epoch`` is the D-CAT
loss alone (forward and backward on one batch of these shapes, times the steps of an epoch), so
``loss_floor_over_unimodal`` is the ratio a cached transfer would have if the loss were its only
extra work. Goal (issue 29): ``cached_over_unimodal`` ≤ 1.10 on the CPU. On a GPU:
``--accelerator gpu --precision bf16-mixed``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from dcat import ModalityNet, create_encoder
from dcat.data import PairedDataset
from dcat.nn.losses import cross_attention_distance, source_square
from dcat.training.cache import SourceCache
from dcat.training.engine import TrainConfig, fit
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask


class EpochTimer(L.Callback):
    """Wall time of each epoch's training batches (validation excluded)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def _sync(self, trainer: L.Trainer) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._sync(trainer)
        self._start = time.perf_counter()

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._sync(trainer)  # validation follows each epoch's training batches
        self.times.append(time.perf_counter() - self._start)


def make_data(n: int, frames: int, size: int, imu_steps: int, classes: int) -> PairedDataset:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    video = rng.normal(size=(n, frames, 3, size, size)).astype(np.float32)
    imu = rng.normal(size=(n, 6, imu_steps)).astype(np.float32) + 0.3 * labels[:, None, None]
    return PairedDataset(
        {"video": video, "imu": imu}, labels, np.zeros(n, dtype=int),
        [str(i) for i in range(n)], [str(c) for c in range(classes)], name="bench",
    )  # fmt: skip


def loss_step_s(
    source: ModalityNet, target: ModalityNet, train: PairedDataset, batch: int
) -> float:
    """Median seconds of the D-CAT loss alone, forward and backward, on one batch of this run's
    shapes: the target's ``K`` and ``V`` and the cached source's (with its ``‖K_aᵀV_a‖²``), as
    the cached transfer computes it each step (MCMA off)."""
    with torch.no_grad():
        k_a, _, v_a = source.forward_all(torch.from_numpy(train.inputs["video"][:batch])).kqv
        k_b, _, v_b = target.forward_all(torch.from_numpy(train.inputs["imu"][:batch])).kqv
    k_b, v_b = k_b.requires_grad_(), v_b.requires_grad_()
    square = source_square(k_a, v_a)
    times = []
    for i in range(300):
        start = time.perf_counter()
        source_kqv, target_kqv = (k_a, None, v_a), (k_b, None, v_b)
        cross_attention_distance(source_kqv, target_kqv, source_square=square).mean().backward()
        if i >= 50:  # warm-up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=160)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=32, help="frame height and width")
    parser.add_argument("--depth", type=int, default=18, help="ResNet depth of the source")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    args = parser.parse_args()

    classes = 8
    train = make_data(args.samples, args.frames, args.size, 100, classes)
    val = train.subset(range(16))
    gpu = args.accelerator in ("gpu", "cuda")
    torch.manual_seed(0)
    video = create_encoder("video", 3, depth=args.depth, channels_last=gpu)
    source = ModalityNet(video, d_out=512, num_classes=classes)

    def target() -> ModalityNet:
        torch.manual_seed(1)
        return ModalityNet(create_encoder("imu", 6), d_out=512, num_classes=classes, dropout=0.5)

    def run(task, cache: bool, folder: Path) -> tuple[float, float]:
        timer = EpochTimer()
        config = TrainConfig(
            max_epochs=2, batch_size=args.batch_size, accelerator=args.accelerator,
            precision=args.precision, progress=False, logger="none", cache_sources=cache,
            deterministic=False,
        )  # fmt: skip
        start = time.perf_counter()
        fit(task, train, val, config, folder, resume=False, callbacks=[timer])
        total = time.perf_counter() - start
        return timer.times[1], total - sum(timer.times)

    results: dict[str, object] = {
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "threads": torch.get_num_threads(), "precision": args.precision,
        "samples": args.samples, "frames": args.frames, "size": args.size,
        "source_depth": args.depth, "batch_size": args.batch_size, "rounds": args.rounds,
    }  # fmt: skip
    # MCMA off: every sample is aligned, the most loss work per step (with MCMA only the
    # samples the source gets right are computed, and this untrained source gets few right)
    spec = [SourceSpec("video", source, mcma=False)]
    configs = {
        "unimodal_s": (lambda: UnimodalTask(target(), "imu"), False),
        "transfer_uncached_s": (lambda: TransferTask(target(), "imu", spec), False),
        "transfer_cached_s": (lambda: TransferTask(target(), "imu", spec), True),
        # the same cache without its ‖K_aᵀV_a‖² per sample: the loss recomputes the source term
        "transfer_cached_recomputed_s": (lambda: TransferTask(target(), "imu", spec), True),
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    cache_build: list[float] = []
    lookup = SourceCache.lookup
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            for name, (make_task, cache) in configs.items():
                if name == "transfer_cached_recomputed_s":
                    SourceCache.lookup = lambda self, *a, **k: lookup(self, *a, **k)._replace(
                        square=None
                    )
                try:
                    epoch, other = run(make_task(), cache, Path(tmp) / f"{name}{round_index}")
                finally:
                    SourceCache.lookup = lookup
                times[name].append(epoch)
                if name == "transfer_cached_s":
                    cache_build.append(other)
            print(
                f"round {round_index + 1}/{args.rounds}: "
                + ", ".join(f"{k}={v[-1]:.3f}" for k, v in times.items()),
                flush=True,
            )
    for name, values in times.items():
        results[name] = statistics.median(values)
    results["cache_build_and_setup_s"] = statistics.median(cache_build)
    results["cached_over_unimodal"] = results["transfer_cached_s"] / results["unimodal_s"]
    results["uncached_over_cached"] = results["transfer_uncached_s"] / results["transfer_cached_s"]
    results["recomputed_over_cached"] = (
        results["transfer_cached_recomputed_s"] / results["transfer_cached_s"]
    )
    # the loss's own arithmetic per epoch: what a cached transfer cannot avoid over a unimodal one
    steps = -(-args.samples // args.batch_size)
    loss_s = steps * loss_step_s(source, target(), train, args.batch_size)
    results["loss_s_per_epoch"] = loss_s
    results["loss_floor_over_unimodal"] = (results["unimodal_s"] + loss_s) / results["unimodal_s"]
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
