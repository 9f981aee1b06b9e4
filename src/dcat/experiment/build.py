"""The pieces of one model of the protocol: its network, its task, its data's normalisation,
and the weights of a finished run, built the same way by a sequential run and by a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcat.data import PairedDataset
from dcat.data.augment import InertialAugment, SkeletonAugment
from dcat.errors import DcatError
from dcat.experiment.config import ExperimentConfig
from dcat.experiment.plan import Job
from dcat.io.normalization import ChannelStats, center_positions
from dcat.io.skeleton import get_layout
from dcat.nn.encoders import create_encoder
from dcat.nn.encoders.registry import accepts_option
from dcat.nn.model import ModalityNet
from dcat.nn.weights import load_torch_file
from dcat.training.run_folder import RunFolder, target_weights
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask

__all__ = [
    "augmentation",
    "build_net",
    "check_fits",
    "check_layouts",
    "encoder_options",
    "fit_stats",
    "in_channels",
    "load_target",
    "make_task",
    "normalization_kinds",
]


def in_channels(data: PairedDataset, modality: str) -> int:
    """The input channels of ``modality``'s encoder: ``C`` of ``(C, T)`` or ``(F, C, H, W)``."""
    shape = data.shape(modality)
    return shape[1] if len(shape) == 4 else shape[0]  # video (F, C, H, W) or series (C, T)


def build_net(
    config: ExperimentConfig, data: PairedDataset, modality: str, seed: int, *, plain: bool = False
) -> ModalityNet:
    """A freshly initialised network for ``modality``; the same seed gives the same weights.

    With ``plain``, the network of the plain reference: no attention, no auxiliary head."""
    spec = config.modalities[modality]
    torch.manual_seed(seed)
    try:
        encoder = create_encoder(
            spec.encoder, in_channels(data, modality), **encoder_options(config, modality)
        )
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


def encoder_options(config: ExperimentConfig, modality: str) -> dict[str, Any]:
    """The encoder options of ``modality``: its configured ones, and for an encoder that reads
    a skeleton (options ``parents`` and ``dims``) those of its layout in ``data.skeletons``,
    unless the configuration gives them."""
    spec = config.modalities[modality]
    options = dict(spec.options)
    layout = config.data.layout(modality)
    if layout is not None and spec.encoder is not None:
        if accepts_option(spec.encoder, "parents"):
            options.setdefault("parents", list(layout.parents))
        if accepts_option(spec.encoder, "dims"):
            options.setdefault("dims", layout.dims)
    return options


def augmentation(
    config: ExperimentConfig, modality: str, stats: dict[str, ChannelStats]
) -> InertialAugment | None:
    """The configured augmentation of ``modality`` as a target, on its normalised inputs: a
    :class:`SkeletonAugment` for a modality with a skeleton layout, otherwise an
    :class:`InertialAugment`."""
    spec = config.data.augment.get(modality)
    if spec is None:
        return None
    norm = stats.get(modality)
    shift = None if norm is None else norm.shift
    scale = None if norm is None else norm.scale
    layout = config.data.layout(modality)
    if layout is not None:
        return SkeletonAugment(
            **spec.model_dump(), up_axis=layout.up_axis, dims=layout.dims, shift=shift, scale=scale
        )
    return InertialAugment(**spec.model_dump(), shift=shift, scale=scale)


def check_layouts(config: ExperimentConfig, data: PairedDataset) -> None:
    """Every declared skeleton layout names a series of the data set with its channel count.

    Raises:
        DcatError: Naming ``data.skeletons.<modality>`` and both counts.
    """
    for modality in config.data.skeletons:
        where = f"config: data.skeletons.{modality}"
        if modality not in data.modalities:
            raise DcatError(f"{where}: modality {modality!r} is not in the data set")
        layout = get_layout(config.data.skeletons[modality], modality)
        shape = data.shape(modality)
        if len(shape) != 2 or shape[0] != layout.channels:
            raise DcatError(
                f"{where}: layout {layout.name!r} has {len(layout.joints)} joints × "
                f"{layout.dims} = {layout.channels} channels, the modality's samples are "
                f"{tuple(shape)} (channels, steps)"
            )


def normalization_kinds(config: ExperimentConfig, data: PairedDataset) -> dict[str, str]:
    kinds = config.data.normalization
    kinds = kinds if isinstance(kinds, dict) else dict.fromkeys(data.modalities, kinds)
    for modality, kind in kinds.items():
        if modality not in data.modalities:
            raise DcatError(
                f"config: data.normalization: modality {modality!r} is not in the data set "
                f"(has {data.modalities})"
            )
        if kind not in ("zscore", "minmax", "isotropic", "none"):
            raise DcatError(
                f"config: data.normalization.{modality}: must be zscore, minmax, isotropic "
                f"or none, got {kind!r}"
            )
    check_layouts(config, data)
    for modality, mode in config.data.center_modes().items():
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


def fit_stats(config: ExperimentConfig, train: PairedDataset) -> dict[str, ChannelStats]:
    """Modality → normalisation statistics fitted on ``train`` (none for ``none`` modalities)."""
    kinds = normalization_kinds(config, train)
    layouts = {m: config.data.layout(m) for m in config.data.skeletons}
    stats = train.fit_normalization(
        {m: k for m, k in kinds.items() if k != "none"},
        center=config.data.center_modes(),
        dims={m: layout.dims for m, layout in layouts.items() if layout is not None},
    )
    return {m: s for m, s in stats.items() if kinds.get(m, "zscore") != "none"}


def load_target(run_dir: Path, net: ModalityNet) -> ModalityNet:
    """Load the finished run's best target weights into ``net`` (a fresh network)."""
    path = RunFolder(run_dir).best
    checkpoint = load_torch_file(path)
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise DcatError(f"{path} is not a dcat checkpoint (no state_dict)")
    state = target_weights(state)
    check_fits(path, state, net)
    net.load_state_dict(state)
    return net.eval()


def check_fits(path: Path, state: dict[str, Any], net: ModalityNet) -> None:
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


def make_task(
    config: ExperimentConfig,
    job: Job,
    net: ModalityNet,
    baselines: dict[str, ModalityNet],
    augment: InertialAugment | None = None,
) -> UnimodalTask | TransferTask:
    """The objective of ``job``: a unimodal task, or a transfer from ``baselines`` (modality →
    its frozen baseline; a method that learns from samples needs none)."""
    if not job.parts:
        return UnimodalTask(net, job.target, augment=augment)
    repeated = len({p.modality for p in job.parts}) != len(job.parts)
    specs = [
        SourceSpec(
            # a source with several methods (a combined objective) needs a name per term
            f"{p.modality}-{p.tag}" if repeated else p.modality,
            baselines[p.modality] if p.needs_network else None,
            modality=p.modality,
            method=p.base,
            weight=p.weight,
            options=dict(p.options),
        )
        for p in job.parts
    ]
    return TransferTask(net, job.target, specs, augment=augment)
