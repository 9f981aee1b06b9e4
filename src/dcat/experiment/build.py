"""The pieces of one model of the protocol: its network, its task, its data's normalisation,
and the weights of a finished run, built the same way by a sequential run and by a worker."""

from __future__ import annotations

import numpy as np
import torch

from dcat.data import PairedDataset
from dcat.data.augment import InertialAugment, SkeletonAugment
from dcat.errors import DcatError
from dcat.experiment.config import ExperimentConfig
from dcat.experiment.plan import Job
from dcat.experiment.recipe import DataRecipe, NetworkRecipe, Recipe
from dcat.io.normalization import ChannelStats, center_positions
from dcat.io.skeleton import SkeletonLayout, get_layout
from dcat.nn.model import ModalityNet
from dcat.training.elsewhere import (
    Teacher,
    check_card,
    load_teacher,
    load_user_teacher,
    map_classes,
)
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask

__all__ = [
    "TEACHER_FOLDER",
    "augmentation",
    "augmentation_of",
    "build_model",
    "build_net",
    "check_layouts",
    "fit_stats",
    "in_channels",
    "make_task",
    "net_of",
    "normalization_kinds",
    "teacher_lacks",
    "teacher_net",
    "teacher_of",
    "teachers",
]


TEACHER_FOLDER = "teachers"
"""A teacher from elsewhere stands where a source's run folder would: ``teachers/<modality>``
names it in cache keys (it has no run folder of the experiment)."""

# a process reads each teacher once: (path, classes) → the teacher and its mapped network
_TEACHERS: dict[tuple[str, tuple[str, ...]], tuple[Teacher, ModalityNet, list[str]]] = {}


def teachers(config: ExperimentConfig) -> list[str]:
    """The modalities whose teacher was trained elsewhere (``modalities.<m>.teacher``)."""
    return [m for m, spec in config.modalities.items() if spec.teacher is not None]


def _loaded(
    config: ExperimentConfig, data: PairedDataset, modality: str
) -> tuple[Teacher, ModalityNet, list[str]]:
    given = config.modalities[modality].teacher
    if given is None:
        raise DcatError(f"modality {modality!r} has no teacher from elsewhere")
    path = given if isinstance(given, str) else given.model_dump_json()
    key = (path, tuple(data.class_names))
    if key not in _TEACHERS:
        where = f"config: modalities.{modality}.teacher"
        try:
            teacher = (
                load_teacher(given)
                if isinstance(given, str)
                else load_user_teacher(given.module, given.weights, given.card)
            )
        except (FileNotFoundError, DcatError) as err:
            raise DcatError(f"{where}: {err}") from None
        stream = data.stream(modality)
        check_card(
            teacher.card, kind=stream.kind, shape=data.shape(modality), rate_hz=stream.rate_hz,
            channels=stream.channels, where=f"{where} ({teacher.origin})",
        )  # fmt: skip
        net, missing = map_classes(teacher, list(data.class_names), f"{where} ({teacher.origin})")
        _TEACHERS[key] = (teacher, net, missing)
    return _TEACHERS[key]


def teacher_of(config: ExperimentConfig, data: PairedDataset, modality: str) -> Teacher:
    """The teacher of ``modality`` trained elsewhere, its card checked against ``data``.

    Raises:
        DcatError: No such file or folder, not a dcat model, a card that does not describe the
            data (naming the field), or no class in common (naming the config key).
    """
    return _loaded(config, data, modality)[0]


def teacher_net(config: ExperimentConfig, data: PairedDataset, modality: str) -> ModalityNet:
    """The teacher's network with its classes in the data's order (frozen, eval mode)."""
    return _loaded(config, data, modality)[1]


def teacher_lacks(config: ExperimentConfig, data: PairedDataset, modality: str) -> list[str]:
    """The data's classes the teacher of ``modality`` was not trained on."""
    return _loaded(config, data, modality)[2]


def in_channels(data: PairedDataset, modality: str) -> int:
    """The input channels of ``modality``'s encoder: ``C`` of ``(C, T)`` or ``(F, C, H, W)``."""
    shape = data.shape(modality)
    return shape[1] if len(shape) == 4 else shape[0]  # video (F, C, H, W) or series (C, T)


def build_net(
    config: ExperimentConfig, data: PairedDataset, modality: str, seed: int, *, plain: bool = False
) -> ModalityNet:
    """A freshly initialised network for ``modality``; the same seed gives the same weights.

    With ``plain``, the network of the plain reference: no attention, no auxiliary head. The
    network of ``modality``'s recipe (:class:`~dcat.experiment.recipe.NetworkRecipe`)."""
    network = NetworkRecipe.of(config, modality, plain=plain)
    return _network(network, config.data.layout(modality), data, modality, seed)


def net_of(recipe: Recipe, data: PairedDataset) -> ModalityNet:
    """The freshly initialised network of ``recipe``, sized by ``data`` (channels, classes)."""
    job = recipe.job
    return _network(recipe.network, recipe.data.layout, data, job.target, job.seed)


def _network(
    network: NetworkRecipe,
    layout: SkeletonLayout | None,
    data: PairedDataset,
    modality: str,
    seed: int,
) -> ModalityNet:
    try:
        return network.build(in_channels(data, modality), data.num_classes, seed, layout)
    except ValueError as err:
        raise DcatError(f"config: modalities.{modality}: {err}") from err


def build_model(
    recipe: Recipe,
    data: PairedDataset,
    sources: dict[str, ModalityNet],
    stats: dict[str, ChannelStats],
) -> UnimodalTask | TransferTask:
    """The task of ``recipe`` around a fresh network: what a run trains, from its recipe alone.

    Args:
        recipe: The model.
        data: The data set (its channels and classes size the network).
        sources: Modality → its frozen baseline, for the terms that read a network.
        stats: The split's normalisation statistics (the augmentation works on normalised
            inputs).
    """
    augment = augmentation_of(recipe.data, stats.get(recipe.job.target))
    return make_task(recipe.job, net_of(recipe, data), sources, augment)


def augmentation(
    config: ExperimentConfig, modality: str, stats: dict[str, ChannelStats]
) -> InertialAugment | None:
    """The configured augmentation of ``modality`` as a target, on its normalised inputs (see
    :func:`augmentation_of`)."""
    return augmentation_of(DataRecipe.of(config, modality), stats.get(modality))


def augmentation_of(recipe: DataRecipe, norm: ChannelStats | None) -> InertialAugment | None:
    """The augmentation a data recipe asks for: a :class:`SkeletonAugment` for a modality with
    a skeleton layout, otherwise an :class:`InertialAugment`; ``None`` for none.

    Args:
        recipe: The target's data recipe.
        norm: The target's normalisation statistics (their shift and scale are undone around
            the geometric transforms), or ``None``.
    """
    spec = recipe.augment
    if spec is None:
        return None
    # as the augmentation itself converts them (its parameters are typed as sequences)
    shift = None if norm is None else torch.as_tensor(norm.shift, dtype=torch.float32)
    scale = None if norm is None else torch.as_tensor(norm.scale, dtype=torch.float32)
    layout = recipe.layout
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
    """Modality → normalisation statistics fitted on ``train`` (none for ``none`` modalities);
    a modality whose teacher was trained elsewhere is normalised as its card says, so the
    teacher reads its inputs as it was trained."""
    own = {m: teacher_of(config, train, m).normalization for m in teachers(config)}
    kinds = normalization_kinds(config, train)
    kinds = {m: k for m, k in kinds.items() if m not in own}
    layouts = {m: config.data.layout(m) for m in config.data.skeletons}
    stats = train.fit_normalization(
        {m: k for m, k in kinds.items() if k != "none"},
        center={m: c for m, c in config.data.center_modes().items() if m not in own},
        dims={m: layout.dims for m, layout in layouts.items() if layout is not None},
    )
    fitted = {m: s for m, s in stats.items() if kinds.get(m, "zscore") != "none"}
    return {**fitted, **{m: s for m, s in own.items() if s is not None}}


def make_task(
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
