"""The two video encoders on a CPU: ResNet-18 per frame (``video``) and 3-D convolutions
(``video_small``), at the issue's depth setting (16 greyscale frames of 60 × 80).

* ``step_*``: one training step of each (forward, cross-entropy, backward, Adam) on
  ``--batch`` random clips through a :class:`dcat.ModalityNet`, on ``--threads`` torch threads:
  the median and best of ``--repeats`` timed steps after two untimed ones, the two encoders'
  steps alternating (``step_speedup_median``: the median over rounds of ResNet's step over the
  small one's, each round under the same load), with each encoder's forward GFLOP per clip
  (``torch.utils.flop_counter``) and its weights.
* ``avletters`` (with ``--avletters ROOT``, the real lip videos of AVLetters at 16 frames of
  60 × 80): ``dcat experiment`` on the lips alone (baseline, leave-speaker-out, ``--epochs``
  epochs) with each encoder, reporting the grid estimate the console printed before training,
  the wall time the model took (training, validation and test), and its test F1. Few epochs:
  this compares cost, and F1 only as a sanity check, not a tuned result.

Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from dcat import ModalityNet, create_encoder
from dcat.training.tasks import UnimodalTask

ENCODERS = {"video": {"depth": 18, "d_model": 128}, "video_small": {"d_model": 128}}


def _stepper(name: str, batch: int, frames: int, size: tuple[int, int]) -> tuple:
    """One training step of encoder ``name`` on random clips, and the encoder."""
    torch.manual_seed(0)
    encoder = create_encoder(name, 1, **ENCODERS[name])
    task = UnimodalTask(ModalityNet(encoder, d_out=128, num_classes=26), "video")
    optimizer = torch.optim.Adam(task.parameters(), lr=1e-3)
    batch_data = {
        "inputs": {"video": torch.rand(batch, frames, 1, *size)},
        "label": torch.arange(batch) % 26,
    }

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        task(batch_data)["loss"].backward()
        optimizer.step()

    return step, encoder


def step_times(batch: int, frames: int, size: tuple[int, int], repeats: int) -> dict:
    """Seconds of one training step of each encoder, and its cost. The encoders' steps
    alternate, so that both see the same load on a shared machine."""
    steppers = {name: _stepper(name, batch, frames, size) for name in ENCODERS}
    for step, _ in steppers.values():
        for _ in range(2):
            step()
    times: dict[str, list[float]] = {name: [] for name in ENCODERS}
    for _ in range(repeats):
        for name, (step, _) in steppers.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    result = {}
    for name, (_, encoder) in steppers.items():
        with FlopCounterMode(display=False) as flops, torch.no_grad():
            encoder.eval()(torch.rand(1, frames, 1, *size))
        result[f"step_{name}"] = {
            "step_s": statistics.median(times[name]),
            "step_s_best": min(times[name]),
            "clips_per_s": batch / statistics.median(times[name]),
            "encoder_gflop_per_clip": flops.get_total_flops() / 1e9,
            "encoder_weights": sum(p.numel() for p in encoder.parameters()),
        }
    # step by step: the two steps of one round ran under the same load
    ratios = [a / b for a, b in zip(times["video"], times["video_small"], strict=True)]
    result["step_speedup_median"] = statistics.median(ratios)
    return result


def avletters(root: Path, name: str, epochs: int, batch: int) -> dict:
    """``dcat experiment`` on AVLetters' lips with encoder ``name``: estimate, time, F1."""
    from dcat.experiment.config import ExperimentConfig
    from dcat.experiment.runner import run_experiment

    config = ExperimentConfig(
        name=f"lips_{name}",
        data={
            "dataset": "avletters", "root": str(root),
            "options": {"frames": 16, "mfcc_steps": 32, "lips_size": [60, 80]},
        },
        modalities={"lips": {"encoder": name, "options": ENCODERS[name]}},
        splits=[{"kind": "ood", "test_subjects": ["Verity", "Yi"], "val_size": 0.15}],
        seeds=[0], reference=False, d_out=128, dropout=0.5,
        train={"max_epochs": epochs, "batch_size": batch, "lr": 1e-3, "weight_decay": 1e-4},
    )  # fmt: skip
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        run_experiment(config, out, log=lines.append, progress=False)
        total = time.perf_counter() - started
        records = json.loads((Path(out) / "results.json").read_text())
    estimate = next(line for line in lines if line.startswith("grid estimate"))
    trained = next(line for line in lines if "f1=" in line)
    seconds = float(re.search(r"\(([\d.]+) s\)", trained).group(1))
    return {
        "estimate_line": estimate,
        "model_s": seconds,
        "epoch_s": seconds / epochs,
        "run_s": total,
        "test_f1": records[0]["f1"],
        "val_f1": records[0]["val_f1"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, nargs=2, default=(60, 80))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--avletters", type=Path, help="AVLetters root (Lips/, Audio/)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = {
        "threads": args.threads, "batch": args.batch, "frames": args.frames,
        "size": list(args.size), "torch": torch.__version__,
    }  # fmt: skip
    result.update(step_times(args.batch, args.frames, tuple(args.size), args.repeats))
    print(result, flush=True)
    if args.avletters is not None:
        for name in ENCODERS:
            result[f"avletters_{name}"] = avletters(args.avletters, name, args.epochs, args.batch)
            print(name, result[f"avletters_{name}"], flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
