"""Per-window inference cost of the deployed UTD-MHAD IMU model: PyTorch eager vs ONNX Runtime.

The model is the IMU target of the paper preset (``utd_mhad_paper``, dcat's demo until the
demo took the recommended form: its encoder, ``d_out``, 27 classes, 64 steps), trained for one
epoch on the embedded UTD-MHAD so that the real export path runs
(``dcat.deploy.export.export_model``, parity check included); or pass ``--run`` with any run
folder. Both back ends run on the CPU with their default threads, interleaved in rounds so they
share the machine's load. Prints one JSON object on its last line::

    {"torch_p50_ms", "torch_p99_ms", "ort_p50_ms", "ort_p99_ms", "torch_b64_windows_per_s",
     "ort_b64_windows_per_s", "ort_speedup_p50", ...}

Latency is per call at batch 1 (one window); throughput is windows per second at batch 64.
Goal (issue 6): ``ort_p50_ms`` ≤ 1 on the 2-core machine and ``ort_speedup_p50`` ≥ 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def train_demo_imu(run_dir: Path) -> Path:
    """One epoch of the demo preset's IMU baseline on the embedded UTD-MHAD (OOD split)."""
    from dcat.data import make_split, resolve_subjects
    from dcat.experiment.config import load_config
    from dcat.experiment.recipe import train_options
    from dcat.experiment.runner import build_net, load_dataset
    from dcat.training.engine import fit
    from dcat.training.tasks import UnimodalTask

    config = load_config("utd_mhad_paper", ["train.max_epochs=1"])
    data = load_dataset(config)
    split_cfg = config.splits[0]
    train_subjects, test_subjects = (
        resolve_subjects(data.subjects, data.subject_names, written, field)
        for written, field in ((split_cfg.train_subjects, "train_subjects"),
                               (split_cfg.test_subjects, "test_subjects"))
    )  # fmt: skip
    split = make_split(
        data.labels, data.subjects, split_cfg.kind, seed=0, val_size=split_cfg.val_size,
        train_subjects=train_subjects, test_subjects=test_subjects,
    )  # fmt: skip
    stats = data.subset(split.train).fit_normalization("zscore")
    parts = {name: data.subset(idx).normalized(stats) for name, idx in split.parts().items()}
    net = build_net(config, data, "imu", 0)
    train = train_options(config, "imu", 0)
    train.progress, train.logger = False, "none"
    fit(
        UnimodalTask(net, "imu"), parts["train"], parts["val"], train, run_dir,
        normalization=stats["imu"],
    )  # fmt: skip
    return run_dir


def percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1e3
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a run folder to export instead of training")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=300, help="batch-1 calls per round")
    parser.add_argument("--batch-calls", type=int, default=20, help="batch-64 calls per round")
    args = parser.parse_args()

    from dcat.deploy.export import DeployedNet, export_model, load_trained
    from dcat.deploy.predict import DeployedModel

    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or train_demo_imu(Path(tmp) / "run")
        folder = export_model(run, Path(tmp) / "export", log=lambda line: None)
        net, card, _ = load_trained(run)
        eager = DeployedNet(net).eval()
        ort_model = DeployedModel(folder)
        rng = np.random.default_rng(0)
        one = rng.standard_normal((1, *card.input_shape)).astype(np.float32)
        many = rng.standard_normal((64, *card.input_shape)).astype(np.float32)
        one_t, many_t = torch.from_numpy(one), torch.from_numpy(many)

        def run_torch(x: torch.Tensor) -> None:
            with torch.inference_mode():
                eager(x)

        def run_ort(x: np.ndarray) -> None:
            ort_model.logits(x)

        for _ in range(50):  # warm-up: allocators, thread pools, lazy kernels
            run_torch(one_t), run_ort(one), run_torch(many_t), run_ort(many)
        timings: dict[str, list[float]] = {k: [] for k in ("t1", "o1", "t64", "o64")}
        for _ in range(args.rounds):
            for key, fn, x, calls in (
                ("t1", run_torch, one_t, args.calls),
                ("o1", run_ort, one, args.calls),
                ("t64", run_torch, many_t, args.batch_calls),
                ("o64", run_ort, many, args.batch_calls),
            ):
                for _ in range(calls):
                    start = time.perf_counter()
                    fn(x)
                    timings[key].append(time.perf_counter() - start)
        diff = float(np.abs(ort_model.logits(many) - eager(many_t).detach().numpy()).max())

    torch_p50, torch_p99 = percentiles(timings["t1"])
    ort_p50, ort_p99 = percentiles(timings["o1"])
    result = {
        "device": f"cpu ({os.cpu_count()} logical cores, {platform.processor() or 'unknown'})",
        "model": f"{card.modality} {card.architecture['encoder']} "
        f"{card.architecture['encoder_options']}, d_out {card.architecture['d_out']}, "
        f"input {card.input_shape}, {len(card.class_names)} classes",
        "torch_threads": torch.get_num_threads(),
        "torch_p50_ms": round(torch_p50, 4),
        "torch_p99_ms": round(torch_p99, 4),
        "ort_p50_ms": round(ort_p50, 4),
        "ort_p99_ms": round(ort_p99, 4),
        "torch_b64_windows_per_s": round(64 / float(np.median(timings["t64"])), 1),
        "ort_b64_windows_per_s": round(64 / float(np.median(timings["o64"])), 1),
        "max_abs_logit_diff_b64": diff,
        "ort_speedup_p50": round(torch_p50 / ort_p50, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
