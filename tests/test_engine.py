"""The Lightning engine: run folder, determinism, resume, loggers, DDP, real data."""

from __future__ import annotations

import copy
import json
import math

import lightning as L
import numpy as np
import pytest
import torch
import yaml

from dcat.training.checkpoints import SafeCheckpointIO
from dcat.training.engine import TrainConfig, evaluate, fit
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask

from conftest import make_paired, shared_dataset, small_net

FAST = {"batch_size": 8, "progress": False, "log_every_n_steps": 1}


def _transfer_task(
    seed: int = 0, norm: str = "batch", dropout: float = 0.3, target_seed: int | None = None
) -> TransferTask:
    torch.manual_seed(seed)
    source = small_net("skeleton", norm=norm)
    if target_seed is not None:
        torch.manual_seed(target_seed)
    target = small_net("imu", norm=norm, dropout=dropout)
    return TransferTask(target, "imu", [SourceSpec("skeleton", source)])


def _split(data):
    return data.subset(range(0, 36)), data.subset(range(36, 48))


def test_fit_writes_run_folder(tmp_path, paired) -> None:
    train, val = _split(paired)
    result = fit(
        _transfer_task(), train, val, TrainConfig(max_epochs=2, **FAST), tmp_path, test=val
    )
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "logs" / "metrics.csv").is_file()
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config["train"]["max_epochs"] == 2
    assert config["task"]["sources"][0] == {
        "name": "skeleton",
        "modality": "skeleton",
        "method": "dcat",
        "weight": 1.0,
        "mcma": "correct",
        "temperature": 1.0,
        "cached": True,
    }
    assert config["versions"]["torch"] == torch.__version__
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"acc", "precision", "recall", "f1", "ce", "confusion_matrix"}
    confusion = metrics["test"]["confusion_matrix"]
    assert len(confusion) == 3 and sum(map(sum, confusion)) == len(val)
    assert metrics["test"] == result.test
    header = (tmp_path / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {
        "train/ca",
        "train/ce",
        "train/mcma_frac/skeleton",
        "train/loss_epoch",
        "val/f1",
    } <= set(header)
    # frozen sources are not stored in checkpoints
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state and not any(k.startswith("task.sources.") for k in state)


def test_same_seed_same_metrics_on_cpu(tmp_path, paired) -> None:
    train, val = _split(paired)
    config = TrainConfig(max_epochs=2, seed=3, **FAST)
    first = fit(_transfer_task(), train, val, config, tmp_path / "a", test=val)
    second = fit(_transfer_task(), train, val, config, tmp_path / "b", test=val)
    assert first.test == second.test
    other = fit(
        _transfer_task(),
        train,
        val,
        TrainConfig(max_epochs=2, seed=4, **FAST),
        tmp_path / "c",
        test=val,
    )
    state = [
        torch.load(r.last_checkpoint, weights_only=True)["state_dict"]
        for r in (first, second, other)
    ]
    assert all(torch.equal(state[0][k], state[1][k]) for k in state[0])
    assert not all(torch.equal(state[0][k], state[2][k]) for k in state[0])


def test_resume_equals_uninterrupted(tmp_path, paired) -> None:
    train, val = _split(paired)
    full = fit(
        _transfer_task(), train, val, TrainConfig(max_epochs=4, **FAST), tmp_path / "full", test=val
    )
    part = tmp_path / "part"
    fit(_transfer_task(), train, val, TrainConfig(max_epochs=2, **FAST), part)
    # the same source, but a target with other initial weights: they must come from last.ckpt
    resumed = fit(
        _transfer_task(target_seed=99),
        train,
        val,
        TrainConfig(max_epochs=4, **FAST),
        part,
        test=val,
    )
    a = torch.load(full.last_checkpoint, weights_only=True)
    b = torch.load(resumed.last_checkpoint, weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert full.test == resumed.test


def _record_writes(monkeypatch) -> list[tuple[str, int]]:
    """The checkpoint files written from now on: (name, epoch), in order."""
    written: list[tuple[str, int]] = []
    write = SafeCheckpointIO._write

    def recording(checkpoint, path) -> None:
        written.append((path.name, checkpoint["epoch"]))
        write(checkpoint, path)

    monkeypatch.setattr(SafeCheckpointIO, "_write", staticmethod(recording))
    return written


def test_last_checkpoint_is_the_last_epoch_even_when_it_did_not_improve(
    tmp_path, paired, monkeypatch
) -> None:
    """Lightning writes last.ckpt only where it writes a best one; a resume would then redo
    every epoch since the last improvement."""
    train, val = _split(paired)
    written = _record_writes(monkeypatch)
    # weights unchanged: F1 never improves; a checkpoint after every epoch
    config = TrainConfig(max_epochs=3, lr=1e-30, checkpoint_every_s=0, **FAST)
    result = fit(UnimodalTask(small_net("imu"), "imu"), train, val, config, tmp_path)
    last = torch.load(result.last_checkpoint, weights_only=True)
    best = torch.load(result.best_checkpoint, weights_only=True)
    assert best["epoch"] == result.val["epoch"] == 0
    assert last["epoch"] == 2 and last["global_step"] == 3 * math.ceil(len(train) / 8)
    assert written == [("best.ckpt", 0), ("last.ckpt", 0), ("last.ckpt", 1), ("last.ckpt", 2)]


def test_checkpoints_are_written_at_most_every_interval_with_the_same_model(
    tmp_path, paired, monkeypatch
) -> None:
    """Between writes last.ckpt is skipped and a new best held back, written before the next
    last.ckpt: the first and final epochs' are written, the best never after the last."""
    train, val = _split(paired)
    written = _record_writes(monkeypatch)
    every = fit(
        _transfer_task(), train, val, TrainConfig(max_epochs=5, checkpoint_every_s=0, **FAST),
        tmp_path / "every", test=val,
    )  # fmt: skip
    assert [e for name, e in written if name == "last.ckpt"] == [0, 1, 2, 3, 4]
    written.clear()
    rarely = fit(
        _transfer_task(), train, val, TrainConfig(max_epochs=5, checkpoint_every_s=1e9, **FAST),
        tmp_path / "rarely", test=val,
    )  # fmt: skip
    assert [e for name, e in written if name == "last.ckpt"] == [0, 4]
    bests = [e for name, e in written if name == "best.ckpt"]
    assert len(bests) <= 2 and bests[-1] == rarely.val["epoch"]  # the latest best, once
    assert written[-1] == ("last.ckpt", 4)
    assert rarely.test == every.test and rarely.val == every.val
    for run in ("best", "last"):
        a = torch.load(getattr(every, f"{run}_checkpoint"), weights_only=True)
        b = torch.load(getattr(rarely, f"{run}_checkpoint"), weights_only=True)
        assert a["epoch"] == b["epoch"]
        for key in a["state_dict"]:
            assert torch.equal(a["state_dict"][key], b["state_dict"][key]), (run, key)


class _Crash(L.Callback):
    """Fails at the start of ``epoch``, as a killed process stops."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("killed")


def test_a_run_killed_between_checkpoints_resumes_to_the_same_model(tmp_path, paired) -> None:
    train, val = _split(paired)
    config = TrainConfig(max_epochs=4, checkpoint_every_s=1e9, **FAST)
    full = fit(_transfer_task(), train, val, config, tmp_path / "full", test=val)
    part = tmp_path / "part"
    with pytest.raises(RuntimeError, match="killed"):
        fit(_transfer_task(), train, val, config, part, callbacks=[_Crash(3)])
    # epochs 1 and 2 finished after the first write: the resume trains them again
    assert torch.load(part / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    resumed = fit(_transfer_task(target_seed=99), train, val, config, part, test=val)
    assert resumed.test == full.test and resumed.val == full.val
    a = torch.load(full.last_checkpoint, weights_only=True)
    b = torch.load(resumed.last_checkpoint, weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key


@pytest.mark.parametrize("logger", ["tensorboard", "mlflow"])
def test_other_loggers(tmp_path, paired, logger: str) -> None:
    pytest.importorskip("tensorboard" if logger == "tensorboard" else "mlflow")
    train, val = _split(paired)
    fit(
        UnimodalTask(small_net("imu"), "imu"),
        train,
        val,
        TrainConfig(max_epochs=1, logger=logger, **FAST),
        tmp_path,
    )
    if logger == "tensorboard":
        assert list((tmp_path / "logs").glob("events.out.tfevents.*"))
    else:
        metric_dirs = list((tmp_path / "mlruns").glob("*/*/metrics"))
        assert len(metric_dirs) == 1
        logged = {p.relative_to(metric_dirs[0]).as_posix() for p in metric_dirs[0].rglob("*")}
        assert {"val/f1", "val/ce", "train/loss_epoch", "train/ce"} <= logged


def test_config_rejects_unknown_and_bad_options() -> None:
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['epochs'\]"):
        TrainConfig.from_dict({"epochs": 3})
    with pytest.raises(ValueError, match=r"TrainConfig\.lr is out of range: -1"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError, match="logger must be csv, tensorboard, mlflow or none"):
        TrainConfig(logger="wandb")


def _one_step(task, data, config, run_dir):
    fit(task, data, data, config, run_dir)
    return {k: v.detach().clone() for k, v in task.target.state_dict().items()}


@pytest.mark.slow
def test_ddp_step_equals_single_process_step(tmp_path) -> None:
    # 8 samples = one global batch: 1 process × 8 or 2 processes × 4 (gloo). GroupNorm and no
    # dropout, so per-process batch statistics cannot differ. The MCMA mask selects unevenly
    # across ranks; a mean of per-rank means would give a different step.
    data = make_paired(n=8, seed=5)
    base = _transfer_task(seed=1, norm="group", dropout=0.0)
    common = {
        "max_epochs": 1,
        "progress": False,
        "logger": "none",
        "lr": 0.05,
        "cache_sources": False,
    }
    single = _one_step(
        copy.deepcopy(base), data, TrainConfig(batch_size=8, **common), tmp_path / "single"
    )
    ddp = _one_step(
        copy.deepcopy(base),
        data,
        TrainConfig(batch_size=4, devices=2, strategy="ddp_spawn", **common),
        tmp_path / "ddp",
    )
    initial = base.target.state_dict()
    moved = [k for k in single if not torch.equal(single[k], initial[k])]
    assert moved, "the step changed nothing"
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.slow
@pytest.mark.data
def test_real_utd_mhad_skeleton_to_imu(tmp_path) -> None:
    from dcat import ModalityNet, create_encoder
    from dcat.data import load_utd_mhad

    data = load_utd_mhad(shared_dataset("utd_mhad"), subjects=[1, 2, 3])
    train_idx = [i for i, s in enumerate(data.subjects) if s in (1, 2)]
    test_idx = [i for i, s in enumerate(data.subjects) if s == 3]
    stats = data.subset(train_idx).fit_normalization()
    train, test = data.subset(train_idx).normalized(stats), data.subset(test_idx).normalized(stats)
    config = TrainConfig(max_epochs=3, batch_size=32, lr=1e-3, **{"progress": False})
    source = ModalityNet(create_encoder("sequence", 60, d_model=64), d_out=64, num_classes=27)
    src = fit(UnimodalTask(source, "skeleton"), train, test, config, tmp_path / "skeleton")
    target = ModalityNet(
        create_encoder("imu", 6, widths=(32, 64, 64)), d_out=64, num_classes=27, dropout=0.5
    )
    task = TransferTask(target, "imu", [SourceSpec("skeleton", source)])
    result = fit(task, train, test, config, tmp_path / "imu", test=test)
    assert src.best_checkpoint.is_file() and result.best_checkpoint.is_file()
    assert 0.0 <= result.test["f1"] <= 1.0 and result.test["acc"] > 1 / 27  # better than chance
    assert sum(map(sum, result.test["confusion_matrix"])) == len(test)
    header = (tmp_path / "imu" / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert "train/ca" in header
    again = evaluate(task, test)
    assert again["f1"] == pytest.approx(result.test["f1"])


@pytest.mark.gpu
@pytest.mark.parametrize("cache", [True, False])
def test_bf16_transfer_on_gpu(tmp_path, paired, cache: bool) -> None:
    train, val = _split(paired)
    task = _transfer_task()
    config = TrainConfig(
        max_epochs=2, accelerator="gpu", precision="bf16-mixed", cache_sources=cache, **FAST
    )
    result = fit(task, train, val, config, tmp_path, test=val)
    assert task.cached("skeleton") is cache
    assert 0.0 <= result.test["f1"] <= 1.0 and math.isfinite(result.test["ce"])
    assert sum(map(sum, result.test["confusion_matrix"])) == len(val)
    state = torch.load(result.last_checkpoint, weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    # the trained target runs on the CPU afterwards, as deployed
    cpu = evaluate(task.cpu(), val)
    assert cpu["f1"] == pytest.approx(result.test["f1"], abs=0.1)


@pytest.mark.gpu
def test_video_to_imu_transfer_on_gpu_with_resnet101_source(tmp_path) -> None:
    # UESTC-shaped generated data: clips of frames (cached uint8 on disk) paired with IMU windows
    import numpy as np

    from dcat import ModalityNet, create_encoder
    from dcat.data import FrameStore, PairedDataset

    rng = np.random.default_rng(0)
    n, classes = 48, 8
    labels = np.arange(n) % classes
    frames = rng.integers(0, 256, size=(n, 8, 3, 112, 112), dtype=np.uint8)
    store = FrameStore.from_array(frames, tmp_path / "frames")
    imu = rng.normal(size=(n, 6, 70)).astype(np.float32) + labels[:, None, None]
    data = PairedDataset(
        {"video": store, "imu": imu},
        labels,
        np.arange(n) % 4,
        [str(i) for i in range(n)],
        [str(c) for c in range(classes)],
    )
    train, val = data.subset(range(40)), data.subset(range(40, 48))
    torch.manual_seed(0)
    video = create_encoder("video", 3, depth=101, channels_last=True)
    source = ModalityNet(video, d_out=64, num_classes=classes)
    gpu = {"accelerator": "gpu", "precision": "bf16-mixed", "progress": False}
    fit(
        UnimodalTask(source, "video"),
        train,
        val,
        TrainConfig(max_epochs=1, batch_size=8, **gpu),
        tmp_path / "video",
    )
    target = ModalityNet(create_encoder("imu", 6), d_out=64, num_classes=classes)
    task = TransferTask(target, "imu", [SourceSpec("video", source)])
    result = fit(
        task, train, val, TrainConfig(max_epochs=3, batch_size=8, **gpu), tmp_path / "imu", test=val
    )
    assert task.cached("video") and task.required_modalities() == ["imu"]
    cache = task._caches["video"]
    assert (
        cache._arrays["keys"].shape == (40, 8, 64) and cache._arrays["keys"].dtype == torch.float16
    )
    assert cache._arrays["keys"].is_cuda  # served from the device without host syncs
    assert math.isfinite(result.test["ce"]) and 0.0 <= result.test["f1"] <= 1.0


@pytest.mark.parametrize("precision", [32, "32-true", 64])
def test_source_caches_are_built_at_an_integer_precision(precision) -> None:
    """Lightning's integer precisions (32, 64) are valid TrainConfig values: building a source
    cache at one ran ``precision.startswith`` on an int and crashed."""
    from dcat.data import PairedDataset
    from dcat.nn.encoders import create_encoder
    from dcat.nn.model import ModalityNet
    from dcat.training.config import TrainConfig
    from dcat.training.engine import attach_source_caches
    from dcat.training.tasks import SourceSpec, TransferTask

    rng = np.random.default_rng(0)
    data = PairedDataset(
        {"a": rng.normal(size=(6, 3, 8)), "b": rng.normal(size=(6, 3, 8))},
        np.arange(6) % 2, np.ones(6, dtype=int), [f"r{i}" for i in range(6)], ["x", "y"],
    )  # fmt: skip
    source = ModalityNet(create_encoder("sequence", 3, d_model=8, depth=1), 8, 2).eval()
    target = ModalityNet(create_encoder("sequence", 3, d_model=8, depth=1), 8, 2)
    task = TransferTask(target, "a", [SourceSpec("b", source, method="logit_kd")])
    attach_source_caches(task, data, TrainConfig(precision=precision), progress=False)
    assert task.cached("b") and task.cache("b").lookup(torch.arange(6)).logits.shape == (6, 2)
