"""Shared fixtures and the skip rules for data and GPU tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(
    os.environ.get("DCAT_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data")
)


def shared_dataset(name: str) -> Path:
    """Path of a real data set under ``SHARED_DATA`` (``$DCAT_SHARED_DATA``); skips when absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data set {name!r} not found at {path}")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def make_paired(n: int = 48, classes: int = 3, seed: int = 0, imu_steps: int = 32):
    """A tiny learnable two-modality data set (imu (6, T), skeleton (12, 16)), 4 subjects."""
    import numpy as np

    from dcat.data import PairedDataset

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    imu = rng.normal(size=(n, 6, imu_steps)).astype(np.float32) + 0.8 * labels[:, None, None]
    skeleton = rng.normal(size=(n, 12, 16)).astype(np.float32) + 1.5 * labels[:, None, None]
    return PairedDataset(
        {"imu": imu, "skeleton": skeleton},
        labels,
        np.arange(n) % 4 + 1,
        [f"rec{i}" for i in range(n)],
        [f"class{c}" for c in range(classes)],
        name="synthetic",
    )


def small_net(modality: str, classes: int = 3, d_out: int = 16, norm: str = "batch", dropout=0.0):
    from dcat import ModalityNet, create_encoder

    if modality == "imu":
        encoder = create_encoder("imu", 6, widths=(8, 8, 12), norm=norm, dropout=0.0)
    else:
        encoder = create_encoder("sequence", 12, d_model=12, depth=2, norm=norm, dropout=0.0)
    return ModalityNet(encoder, d_out=d_out, num_classes=classes, dropout=dropout)


def deployed_window(stats, sample):
    """``sample`` ``(C, T)``, recorded at 30 Hz, as deployment hands it to the model: through
    :func:`dcat.deploy.predict.window_inputs` with a model card holding ``stats``."""
    import numpy as np

    from dcat.deploy.predict import Recording, window_inputs
    from dcat.io.card import ModelCard

    card = ModelCard(
        modality="skeleton", class_names=["a", "b"], input_shape=list(sample.shape),
        rate_hz=30.0, channels=None, normalization=stats.to_dict(), architecture={},
        dcat_version="test",
    )  # fmt: skip
    recording = Recording(sample.T.astype(np.float64), 30.0, 0.0, "mem")
    return window_inputs(card, recording, [0.0])[0]


@pytest.fixture
def paired():
    return make_paired()
