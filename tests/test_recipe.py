"""The training recipe options of TrainConfig: optimizer, cosine schedule with warm-up, label
smoothing; their defaults leave training as it was, and each one is part of a run's fingerprint."""

from __future__ import annotations

import dataclasses
import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from dcat.errors import DcatError
from dcat.training.engine import DCATModule, TrainConfig, cosine_warmup, fit
from dcat.training.tasks import UnimodalTask

from conftest import make_paired, small_net


def test_cosine_warmup_factor_at_chosen_steps() -> None:
    # 4 warm-up steps of 12: 1/4, 2/4, 3/4, 4/4, then half a cosine over the 8 steps left
    assert [cosine_warmup(s, 12, 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert cosine_warmup(4, 12, 4) == 1.0
    assert cosine_warmup(8, 12, 4) == pytest.approx(0.5)  # half-way through the decay
    assert cosine_warmup(6, 12, 4) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert cosine_warmup(12, 12, 4) == pytest.approx(0.0, abs=1e-12)
    assert cosine_warmup(0, 10, 0) == 1.0 and cosine_warmup(5, 10, 0) == pytest.approx(0.5)


class _LearningRates(L.Callback):
    """Records the optimizer's learning rate at every training step."""

    def __init__(self) -> None:
        self.rates: list[float] = []
        self.optimizers: set[str] = set()

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        optimizer = trainer.optimizers[0]
        self.optimizers.add(type(optimizer).__name__)
        self.rates.append(optimizer.param_groups[0]["lr"])


def _fit(tmp_path, callbacks=(), **options) -> tuple[UnimodalTask, TrainConfig]:
    data = make_paired(n=16)
    task = UnimodalTask(small_net("imu"), "imu")
    config = TrainConfig(
        batch_size=4, logger="none", progress=False, lr=0.01, **{"max_epochs": 3, **options}
    )
    fit(task, data, data, config, tmp_path / "run", callbacks=list(callbacks))
    return task, config


def test_the_schedule_sets_the_learning_rate_of_each_step(tmp_path) -> None:
    seen = _LearningRates()
    _fit(tmp_path, [seen], optimizer="adamw", schedule="cosine", warmup_epochs=1)
    # 16 samples in batches of 4: 4 steps per epoch, 12 in all, the first epoch warms up
    expected = [0.01 * cosine_warmup(step, 12, 4) for step in range(12)]
    assert seen.rates == pytest.approx(expected)
    assert seen.optimizers == {"AdamW"}


def test_the_defaults_train_with_adam_at_a_constant_rate(tmp_path) -> None:
    seen = _LearningRates()
    _fit(tmp_path, [seen], max_epochs=2)
    assert seen.rates == [0.01] * 8 and seen.optimizers == {"Adam"}
    module = DCATModule(UnimodalTask(small_net("imu"), "imu"), lr=0.01)
    assert isinstance(module.configure_optimizers(), torch.optim.Adam)  # no scheduler


def test_label_smoothing_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    net = small_net("imu").eval()
    batch = {"inputs": {"imu": torch.randn(6, 6, 32)}, "label": torch.tensor([0, 1, 2, 0, 1, 2])}
    logits = net(batch["inputs"]["imu"])[0]
    log_p = F.log_softmax(logits, dim=1)
    nll = -log_p.gather(1, batch["label"][:, None]).mean()
    uniform = -log_p.mean()  # the cross-entropy against the uniform distribution over 3 classes
    task = UnimodalTask(net, "imu", label_smoothing=0.1).eval()
    torch.testing.assert_close(task(batch)["loss"], 0.9 * nll + 0.1 * uniform)
    torch.testing.assert_close(UnimodalTask(net, "imu").eval()(batch)["loss"], nll)


def test_the_training_options_label_smoothing_becomes_the_tasks(tmp_path) -> None:
    task, _ = _fit(tmp_path, max_epochs=1, label_smoothing=0.2)
    assert task.label_smoothing == 0.2
    untouched, _ = _fit(tmp_path / "plain", max_epochs=1)
    assert untouched.label_smoothing == 0.0
    clash = UnimodalTask(small_net("imu"), "imu", label_smoothing=0.3)
    config = TrainConfig(max_epochs=1, label_smoothing=0.1, logger="none", progress=False)
    message = r"the task has label_smoothing 0\.3 and the training options 0\.1: set one of them"
    with pytest.raises(DcatError, match=message):
        fit(clash, make_paired(n=8), make_paired(n=8), config, tmp_path / "clash")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"optimizer": "sgd"}, r"TrainConfig\.optimizer must be one of \['adam', 'adamw'\]"),
        ({"schedule": "step"}, r"TrainConfig\.schedule must be one of \['constant', 'cosine'\]"),
        ({"label_smoothing": 1.0}, r"TrainConfig\.label_smoothing is out of range: 1\.0"),
        ({"warmup_epochs": -1}, r"TrainConfig\.warmup_epochs is out of range: -1"),
        ({"warmup_epochs": 2}, r"TrainConfig\.warmup_epochs needs schedule 'cosine'"),
        ({"warmup_epochs": 10, "schedule": "cosine"},
         r"TrainConfig\.warmup_epochs \(10\) must be fewer than max_epochs \(10\)"),
    ],
)  # fmt: skip
def test_bad_recipe_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(DcatError, match=message):
        TrainConfig(**options)


def test_new_options_default_to_the_old_training() -> None:
    defaults = TrainConfig()
    assert (defaults.optimizer, defaults.schedule) == ("adam", "constant")
    assert defaults.warmup_epochs == 0 and defaults.label_smoothing == 0.0
    assert dataclasses.replace(defaults, schedule="cosine", warmup_epochs=2).warmup_epochs == 2
