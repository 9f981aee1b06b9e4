"""Teachers trained elsewhere: a frozen source network that the experiment does not train.

A user often has a model for the rich sensor already (trained on a large public data set, or
in an earlier dcat run). :func:`load_teacher` reads one from

* a dcat **run folder** (its best checkpoint and ``model_card.json``) or one of its checkpoints;
* a dcat **export** folder (``model.safetensors`` and ``metadata.json``);
* a user's own ``torch.nn.Module`` (:func:`load_user_teacher`): a factory named
  ``package.module:function``, its weights (safetensors) and a model card (JSON, dcat's format).
  The module's ``forward(x)``, for ``x`` ``(B, *input_shape)``, returns a
  :class:`~dcat.nn.model.ModalityOutput` or a mapping with ``"logits"`` ``(B, K)`` and, for the
  methods that read them, ``"keys"`` and ``"values"`` ``(B, S, d)`` (D-CAT) and
  ``"embedding"`` ``(B, E)`` (feature alignment, RKD, SP, contrastive).

Its model card says what it expects: modality kind, channels, window, rate, normalisation and
classes. :func:`check_card` compares that with the experiment's data before anything trains,
and :func:`map_classes` maps its classes to the experiment's by name (a class it lacks gets a
logit far below the others: no probability), so every transfer method reads the experiment's
class order. Its identity (:attr:`Teacher.digest`, of the weights and the card) enters the
fingerprint of every model that learns from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from dcat.errors import DcatError
from dcat.io.card import ModelCard
from dcat.io.normalization import ChannelStats
from dcat.nn.model import ModalityNet, ModalityOutput
from dcat.nn.weights import load_error_summary
from dcat.training.cache import state_dict_digest
from dcat.training.run_folder import RunFolder, read_target_state

__all__ = [
    "MISSING_LOGIT",
    "Teacher",
    "UserTeacher",
    "check_card",
    "load_teacher",
    "load_user_teacher",
    "map_classes",
]

MISSING_LOGIT = -1.0e4
"""The logit a mapped teacher gives a class it was not trained on: finite (no NaN in a
distillation loss) and far enough below any trained logit that its probability is 0."""

_RATE_TOLERANCE = 0.02  # relative: 50 Hz and 50.5 Hz are one rate, 50 and 60 are not


@dataclass(frozen=True)
class Teacher:
    """A trained network with its model card.

    Attributes:
        net: The network, in eval mode, its parameters frozen.
        card: What it expects (:class:`dcat.io.card.ModelCard`).
        digest: SHA-256 of its weights and its card.
        origin: Where it was read from.
    """

    net: ModalityNet
    card: ModelCard
    digest: str
    origin: str

    @property
    def normalization(self) -> ChannelStats | None:
        """The statistics its inputs were normalised with, or ``None``."""
        stats = self.card.normalization
        return ChannelStats.from_dict(stats) if stats else None


def load_teacher(path: str | Path) -> Teacher:
    """Read a teacher from a dcat run folder, a checkpoint of one, or an export folder.

    Args:
        path: The folder or the ``.ckpt`` file.

    Raises:
        DcatError: A path that is none of these, or whose weights do not fit its card (each
            naming the path).
    """
    path = Path(path)
    if not path.exists():
        raise DcatError(f"teacher {path}: no such file or folder")
    if path.is_dir() and (path / "metadata.json").is_file():
        return _from_export(path)
    checkpoint = RunFolder(path).best if path.is_dir() else path
    if not checkpoint.is_file():
        raise DcatError(
            f"teacher {path}: not a dcat run folder (no {RunFolder(Path()).best}), checkpoint "
            "or export folder (no metadata.json)"
        )
    weights, state = read_target_state(checkpoint)
    card_data = state.get("dcat_card")
    if card_data is None:
        raise DcatError(f"teacher {checkpoint}: the checkpoint holds no model card")
    card = ModelCard.from_dict(card_data, where=f"teacher {checkpoint}")
    return _teacher(card, weights, str(path))


def _from_export(folder: Path) -> Teacher:
    from safetensors.torch import load_file

    card = ModelCard.load(folder / "metadata.json")
    weights_file = folder / "model.safetensors"
    if not weights_file.is_file():
        raise DcatError(f"teacher {folder}: the export holds no model.safetensors")
    return _teacher(card, load_file(weights_file), str(folder))


def _teacher(card: ModelCard, weights: dict[str, torch.Tensor], origin: str) -> Teacher:
    try:
        net = ModalityNet.from_architecture(card.architecture)
        net.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        raise DcatError(
            f"teacher {origin}: its weights do not fit its card ({load_error_summary(err)})"
        ) from None
    net.requires_grad_(False)
    return Teacher(net.eval(), card, _digest(card, net), origin)


def _digest(card: ModelCard, net: ModalityNet) -> str:
    # where it was trained is no part of what it is: a copied folder is the same teacher
    described = {k: v for k, v in card.to_dict().items() if k != "run"}
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(f"{text}\n{state_dict_digest(net)}".encode()).hexdigest()


class UserTeacher(ModalityNet):
    """A user's own network behind :class:`~dcat.nn.model.ModalityNet`'s interface, frozen.

    Its logits are put in the order of ``index``: column ``k`` is the module's column
    ``index[k]``, or :data:`MISSING_LOGIT` where ``index[k]`` is ``-1`` (a class it lacks).

    Args:
        module: The user's network (see the module docstring for what its forward returns).
        index: ``(K,)`` the module's class of each class, ``-1`` for none.
        probe: One input ``(1, *input_shape)``, run once to learn the output's sizes.

    Raises:
        DcatError: A forward that returns neither a ``ModalityOutput`` nor a mapping with
            ``"logits"``, or logits of another shape.
    """

    def __init__(self, module: torch.nn.Module, index: list[int], probe: torch.Tensor) -> None:
        torch.nn.Module.__init__(self)  # no encoder, attention or head of dcat's own
        self.module = module.eval().requires_grad_(False)
        self.register_buffer("index", torch.tensor(index, dtype=torch.long), persistent=False)
        self.index: torch.Tensor
        with torch.no_grad():
            out = self._run(probe)
        self.num_classes, self.num_heads, self.aux_head = len(index), 1, None
        self.d_out = int(out.kqv[0].shape[-1])
        self.embedding_dim = int(out.embedding.shape[-1])
        self.placement = "serial" if out.kqv[0].shape[1] else "none"

    def _run(self, x: torch.Tensor) -> ModalityOutput:
        raw = self.module(x)
        if isinstance(raw, ModalityOutput):
            logits, kqv, embedding = raw.logits, raw.kqv, raw.embedding
        elif isinstance(raw, Mapping) and isinstance(raw.get("logits"), torch.Tensor):
            logits = raw["logits"]
            keys, values = raw.get("keys"), raw.get("values")
            empty = logits.new_zeros((logits.shape[0], 0, 0))
            kqv = (
                (keys, empty, values)
                if keys is not None and values is not None
                else (empty, empty, empty)
            )
            given = raw.get("embedding")
            embedding = given if given is not None else logits.new_zeros((logits.shape[0], 0))
        else:
            raise DcatError(
                "a user's teacher must return a ModalityOutput or a mapping with 'logits' "
                f"(and optionally 'keys', 'values', 'embedding'), got {type(raw).__name__}"
            )
        if logits.ndim != 2 or (self.index.numel() and logits.shape[1] <= int(self.index.max())):
            raise DcatError(f"a user's teacher returned logits of shape {tuple(logits.shape)}")
        return ModalityOutput(self._mapped(logits), kqv, embedding)

    def _mapped(self, logits: torch.Tensor) -> torch.Tensor:
        taken = logits.index_select(1, self.index.clamp_min(0))
        return torch.where(self.index >= 0, taken, taken.new_full((), MISSING_LOGIT))

    def forward_all(self, x: torch.Tensor) -> ModalityOutput:
        """Logits in the mapped class order, ``(K, Q, V)`` and the embedding (see the class)."""
        return self._run(x)

    def remapped(self, index: list[int], probe: torch.Tensor) -> UserTeacher:
        """The same module, its classes in another order (``index`` into this one's)."""
        own = self.index.tolist()
        return UserTeacher(self.module, [own[i] if i >= 0 else -1 for i in index], probe)


def load_user_teacher(factory: str, weights: str | Path, card: str | Path) -> Teacher:
    """A teacher from a user's own ``torch.nn.Module`` (see the module docstring).

    Args:
        factory: ``package.module:function``, called with no argument.
        weights: Its weights (safetensors), loaded strictly.
        card: Its model card (JSON in dcat's format; ``architecture`` may be empty).

    Raises:
        DcatError: A factory that cannot be imported or called, weights that do not fit, a
            module that fails on (or returns no logits for) one sample of its card's shape, or
            a card that is not a dcat model card (each naming the file or name at fault).
    """
    import importlib

    from safetensors.torch import load_file

    module_name, _, attribute = factory.partition(":")
    try:
        build = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as err:
        raise DcatError(f"teacher factory {factory!r}: cannot import it ({err})") from None
    described = ModelCard.load(card)
    module = build()
    if not isinstance(module, torch.nn.Module):
        raise DcatError(
            f"teacher factory {factory!r} returned {type(module).__name__}, not a Module"
        )
    state = load_file(str(weights))
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise DcatError(
            f"teacher {weights}: the weights do not fit {factory} ({load_error_summary(err)})"
        ) from None
    probe = torch.zeros((1, *described.input_shape))
    try:
        net = UserTeacher(module, list(range(len(described.class_names))), probe)
    except DcatError as err:  # what it returned is not a teacher's output
        raise DcatError(f"teacher factory {factory!r}: {err}") from None
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        # the user's forward on its own card's shape: their bug, named in one line
        raise DcatError(
            f"teacher factory {factory!r}: its module fails on one sample of its card's input "
            f"shape {list(described.input_shape)} ({load_error_summary(err)})"
        ) from None
    return Teacher(net.eval(), described, _digest(described, net), f"{factory} ({weights})")


def check_card(
    card: ModelCard,
    *,
    kind: str,
    shape: tuple[int, ...],
    rate_hz: float | None,
    channels: list[str] | tuple[str, ...] | None,
    where: str,
) -> None:
    """Refuse a teacher whose card does not describe the experiment's samples of its modality.

    Args:
        card: The teacher's card.
        kind: The modality's kind in the data (``series``, ``video``, ``audio``).
        shape: One sample's shape in the data, e.g. ``(C, T)``.
        rate_hz: The data's rate along the time axis, or ``None`` when unknown.
        channels: The data's channel names, or ``None`` when unknown.
        where: Names the teacher in the message (e.g. ``config: modalities.skeleton.teacher``).

    Raises:
        DcatError: One line naming the field that differs (kind, channels, window, rate, the
            channel names), the teacher's value and the data's.
    """
    data_shape, own = list(shape), list(card.input_shape)
    if card.kind != kind:
        raise DcatError(f"{where}: kind: the teacher reads {card.kind}, the data are {kind}")
    time_axis = 0 if kind == "video" else len(own) - 1  # (F, C, H, W) or (C, T)

    def besides_time(shape_: list[int]) -> list[int]:
        return [n for i, n in enumerate(shape_) if i != time_axis]

    if len(own) != len(data_shape) or besides_time(own) != besides_time(data_shape):
        what = "frame shape" if kind == "video" else "channels"
        raise DcatError(
            f"{where}: {what}: the teacher reads samples of shape {own}, the data's are "
            f"{data_shape}"
        )
    if own[time_axis] != data_shape[time_axis]:
        raise DcatError(
            f"{where}: window: the teacher reads {own[time_axis]} steps a sample, the data's "
            f"samples hold {data_shape[time_axis]}"
        )
    own_rate = card.rate_hz
    if (
        own_rate is not None
        and rate_hz is not None
        and abs(own_rate - rate_hz) > (_RATE_TOLERANCE * rate_hz)
    ):
        raise DcatError(
            f"{where}: rate_hz: the teacher was trained at {card.rate_hz:g} Hz, the data are "
            f"at {rate_hz:g} Hz"
        )
    if card.channels is not None and channels is not None and list(card.channels) != list(channels):
        raise DcatError(
            f"{where}: channel names: the teacher reads {card.channels}, the data hold "
            f"{list(channels)}"
        )


def map_classes(
    teacher: Teacher, class_names: list[str], where: str
) -> tuple[ModalityNet, list[str]]:
    """The teacher's network with its heads rearranged to ``class_names``' order.

    Row ``k`` of each head is the teacher's row of the class named ``class_names[k]``; a class
    the teacher lacks gets a zero row and the bias :data:`MISSING_LOGIT`. A teacher's classes
    that the experiment lacks are dropped (their probability is spread over the rest by the
    softmax).

    Args:
        teacher: The loaded teacher.
        class_names: The experiment's classes, in label order.
        where: Names the teacher in the message.

    Returns:
        The mapped network (a copy; eval mode, frozen) and the experiment's classes it lacks.

    Raises:
        DcatError: The teacher shares no class with the experiment.
    """
    own = {name: i for i, name in enumerate(teacher.card.class_names)}
    missing = [name for name in class_names if name not in own]
    if len(missing) == len(class_names):
        raise DcatError(
            f"{where}: the teacher shares no class with the data (its classes: "
            f"{teacher.card.class_names[:10]}{' …' if len(teacher.card.class_names) > 10 else ''})"
        )
    if isinstance(teacher.net, UserTeacher):
        probe = torch.zeros((1, *teacher.card.input_shape))
        return teacher.net.remapped([own.get(n, -1) for n in class_names], probe), missing
    architecture = {**teacher.card.architecture, "num_classes": len(class_names)}
    net = ModalityNet.from_architecture(architecture)
    state = teacher.net.state_dict()
    heads = {"head"} | ({"aux_head"} if teacher.net.aux_head is not None else set())
    mapped = {k: v for k, v in state.items() if k.split(".")[0] not in heads}
    for head in heads:
        weight, bias = state[f"{head}.weight"], state[f"{head}.bias"]
        new_weight = weight.new_zeros((len(class_names), weight.shape[1]))
        new_bias = bias.new_full((len(class_names),), MISSING_LOGIT)
        for k, name in enumerate(class_names):
            if name in own:
                new_weight[k], new_bias[k] = weight[own[name]], bias[own[name]]
        mapped[f"{head}.weight"], mapped[f"{head}.bias"] = new_weight, new_bias
    net.load_state_dict(mapped)
    net.requires_grad_(False)
    return net.eval(), missing
