"""Training options, free of any training framework: reading a config never imports Lightning.

:class:`TrainConfig` is a pydantic dataclass: every option has a type, a range or a list of
accepted values, checked when it is built (``TrainConfig(lr=-1)`` raises a one-line
:class:`~dcat.errors.DcatError` naming the option, never pydantic's multi-line
``ValidationError``). The accepted ``precision``, ``accelerator`` and ``strategy`` names are
Lightning's, written out here so that this module does not import it (``tests/
test_config_schema.py`` compares them with Lightning's own lists).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass
from pydantic_core import ErrorDetails

from dcat.errors import DcatError, did_you_mean

__all__ = [
    "Accelerator",
    "CacheDtype",
    "LoggerKind",
    "Optimizer",
    "Precision",
    "Schedule",
    "Strategy",
    "TrainConfig",
    "bound",
    "expected_type",
]

LoggerKind = Literal["csv", "tensorboard", "mlflow", "none"]
Optimizer = Literal["adam", "adamw"]
Schedule = Literal["constant", "cosine"]
CacheDtype = Literal["float16", "bfloat16", "float32"]
Precision = Literal[
    "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true",
    "transformer-engine", "transformer-engine-float16",
    "32", "16", "bf16", "64", 32, 16, 64,
]  # fmt: skip
"""Lightning's ``Trainer(precision=...)`` values, its short (legacy) forms included."""
Accelerator = Literal["cpu", "gpu", "cuda", "mps", "tpu", "auto"]
"""Lightning's registered accelerators, plus ``"gpu"`` and ``"auto"``."""
Strategy = Literal[
    "auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook",
    "ddp_find_unused_parameters_false", "ddp_find_unused_parameters_true",
    "ddp_spawn_find_unused_parameters_false", "ddp_spawn_find_unused_parameters_true",
    "ddp_fork_find_unused_parameters_false", "ddp_fork_find_unused_parameters_true",
    "ddp_notebook_find_unused_parameters_false", "ddp_notebook_find_unused_parameters_true",
    "deepspeed", "deepspeed_stage_1", "deepspeed_stage_2", "deepspeed_stage_2_offload",
    "deepspeed_stage_3", "deepspeed_stage_3_offload", "deepspeed_stage_3_offload_nvme",
    "fsdp", "fsdp_cpu_offload", "single_device", "single_xla", "xla_debug", "xla", "single_tpu",
]  # fmt: skip
"""``"auto"`` and the names in Lightning's strategy registry."""

# Choices named in words in their messages (the wording predates the schema).
_CHOICE_WORDS = {
    "logger": "csv, tensorboard, mlflow or none",
    "cache_dtype": "float16, bfloat16 or float32",
}
_TYPE_WORDS = {
    "int_type": "int",
    "float_type": "float",
    "bool_type": "bool",
    "string_type": "str",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
}
_BOUNDS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def expected_type(error: ErrorDetails) -> str | None:
    """What a pydantic type error wanted (``"int"``, ``"a list"``, ...), or ``None``."""
    return _TYPE_WORDS.get(error["type"])


def bound(error: ErrorDetails) -> str | None:
    """``"positive"``, ``"≥ 0"``, ``"< 1"``, ... for a pydantic range error, or ``None``."""
    if error["type"] not in _RANGE_ERRORS:
        return None
    ((key, limit),) = ((k, v) for k, v in error.get("ctx", {}).items() if k in _BOUNDS)
    return "positive" if (key, limit) == ("gt", 0) else f"{_BOUNDS[key]} {limit:g}"


def _fspath(value: Any) -> Any:
    """A path object given for a folder option is kept as its string."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _unknown_options(unknown: list[Any], known: Iterable[str]) -> str:
    known = sorted(known)
    return f"unknown training option(s) {unknown}; known: {known}" + did_you_mean(
        [str(name) for name in unknown], known
    )


def _choices(cls: type, name: str) -> tuple[Any, ...]:
    annotation = cls.__pydantic_fields__[name].annotation  # type: ignore[attr-defined]
    return typing.get_args(annotation)


def _message(cls: type, err: ValidationError) -> str:
    """One line for the first problem pydantic found, in the words of the older checks."""
    names = [f.name for f in dataclasses.fields(cls)]
    errors = err.errors()
    unknown = [e["loc"][0] for e in errors if e["type"] == "unexpected_keyword_argument"]
    if unknown:
        return _unknown_options(unknown, names)
    if any(e["type"] == "unexpected_positional_argument" for e in errors):
        return f"{cls.__name__} takes at most {len(names)} positional arguments"
    error = errors[0]
    where = error["loc"][0] if error["loc"] else ""
    name = names[where] if isinstance(where, int) else str(where)
    value = error.get("input")
    if bound(error) is not None:
        return f"{cls.__name__}.{name} is out of range: {value!r}"
    if error["type"] == "literal_error":
        if name in _CHOICE_WORDS:
            return f"{cls.__name__}.{name} must be {_CHOICE_WORDS[name]}, got {value!r}"
        choices = _choices(cls, name)
        words = [c for c in choices if isinstance(c, str)]
        close = difflib.get_close_matches(value, words, n=1) if isinstance(value, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{cls.__name__}.{name} must be one of {list(choices)}, got {value!r}{hint}"
    wanted = expected_type(error)
    if wanted is not None:
        optional = type(None) in _choices(cls, name)
        return f"{cls.__name__}.{name} must be {wanted}{' or None' * optional}, got {value!r}"
    return f"{cls.__name__}.{name}: {error['msg']}"


C = TypeVar("C", bound=type)


def _dcat_errors(cls: C) -> C:
    """Make a pydantic dataclass raise :class:`DcatError` (one line) for bad values."""
    init: Callable[..., None] = cls.__init__  # type: ignore[misc]

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        try:
            init(self, *args, **kwargs)
        except ValidationError as err:
            raise DcatError(_message(cls, err)) from err
        check = getattr(self, "_check_fields", None)
        if check is not None:
            check()

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


@_dcat_errors
@dataclass(config=ConfigDict(strict=True, extra="forbid"))
class TrainConfig:
    """Everything the engine needs besides the task and the data.

    Built by keyword (``TrainConfig(max_epochs=2, lr=1e-3)``) or from a mapping
    (:meth:`from_dict`); ``dataclasses.asdict`` and ``dataclasses.replace`` work on it.

    Attributes:
        max_epochs: Training epochs (≥ 1).
        lr: Learning rate (> 0); with a schedule, its peak.
        weight_decay: Weight decay (≥ 0): L2 in the gradient for ``adam``, decoupled for
            ``adamw``.
        optimizer: ``"adam"`` (default) or ``"adamw"`` (Loshchilov & Hutter, 2019).
        schedule: ``"constant"`` (default) or ``"cosine"``: per optimisation step, a linear
            warm-up over ``warmup_epochs`` then a cosine decay to 0 at the last step
            (:func:`dcat.training.engine.cosine_warmup`).
        warmup_epochs: Epochs of linear warm-up of the ``cosine`` schedule (≥ 0, fewer than
            ``max_epochs``).
        label_smoothing: Label smoothing of the training cross-entropy, in ``[0, 1)``; when not
            0 it is the task's (validation and test losses stay plain).
        batch_size: Per-process batch size (≥ 1); with unlabelled training samples, the
            labelled samples a batch holds.
        unlabelled_ratio: Unlabelled training samples a batch holds per labelled one (≥ 0;
            0 leaves them out). An epoch is one pass over the labelled samples, so a run with
            unlabelled samples takes as many steps as one without
            (:class:`~dcat.data.mixing.MixedBatchSampler`).
        seed: Seeds weights, shuffling and dropout; same seed → same metrics on the CPU.
        precision: Lightning precision, e.g. ``"32-true"`` or ``"bf16-mixed"`` (GPU); see
            :data:`Precision`.
        accelerator: ``"cpu"``, ``"gpu"`` (``"cuda"``), ``"mps"``, ``"tpu"`` or ``"auto"``.
        devices: Devices (processes) to use (≥ 1).
        strategy: Lightning strategy, e.g. ``"auto"``, ``"ddp"``, ``"ddp_spawn"``; see
            :data:`Strategy`.
        sync_batchnorm: Synchronise batch-norm statistics across processes.
        logger: ``"csv"`` (default, no extra dependency), ``"tensorboard"``, ``"mlflow"`` (a
            local file store in the run folder, no server) or ``"none"``.
        num_workers: DataLoader workers (≥ 0).
        deterministic: Ask torch for deterministic algorithms.
        progress: Show progress bars.
        cache_sources: Serve frozen sources from a
            :class:`~dcat.training.cache.SourceCache` (turn off
            when the source input is augmented).
        cache_dtype: Storage dtype of cached ``K`` and ``V``: ``"float16"``, ``"bfloat16"``,
            ``"float32"``.
        cache_dir: Keep caches on disk here (memory-mapped); ``None`` keeps them in memory.
        log_every_n_steps: Logging interval (≥ 0).
        checkpoint_every_s: Write ``last.ckpt`` (and a new best checkpoint) at most once every
            this many seconds (≥ 0; 0: after every epoch); the first and the final epoch's are
            always written. A killed run resumes from the last written, at most this much
            training back, and ends with the same model. Small models whose epochs take a
            fraction of a second spend less time writing checkpoints than training without it.

    Raises:
        DcatError: An unknown option, a value of the wrong type, out of range or not among
            the accepted names; the message names the option.
    """

    max_epochs: Annotated[int, Field(ge=1)] = 10
    lr: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    batch_size: Annotated[int, Field(ge=1)] = 32
    seed: int = 0
    precision: Precision = "32-true"
    accelerator: Accelerator = "cpu"
    devices: Annotated[int, Field(ge=1)] = 1
    strategy: Strategy = "auto"
    sync_batchnorm: bool = False
    logger: LoggerKind = "csv"
    num_workers: Annotated[int, Field(ge=0)] = 0
    deterministic: bool = True
    progress: bool = True
    cache_sources: bool = True
    cache_dtype: CacheDtype = "float16"
    cache_dir: Annotated[str | None, BeforeValidator(_fspath)] = None
    log_every_n_steps: Annotated[int, Field(ge=0)] = 10
    checkpoint_every_s: Annotated[float, Field(ge=0)] = 10.0
    optimizer: Optimizer = "adam"
    schedule: Schedule = "constant"
    warmup_epochs: Annotated[int, Field(ge=0)] = 0
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    unlabelled_ratio: Annotated[float, Field(ge=0)] = 1.0

    def _check_fields(self) -> None:
        """Checks across fields, after pydantic's of each (raised as they are, one line)."""
        if self.warmup_epochs and self.warmup_epochs >= self.max_epochs:
            raise DcatError(
                f"TrainConfig.warmup_epochs ({self.warmup_epochs}) must be fewer than "
                f"max_epochs ({self.max_epochs})"
            )
        if self.warmup_epochs and self.schedule != "cosine":
            raise DcatError("TrainConfig.warmup_epochs needs schedule 'cosine'")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping, rejecting unknown keys by name.

        Raises:
            DcatError: An unknown key (with a "did you mean"), or a bad value.
        """
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted((k for k in data if k not in known), key=str)
        if unknown:
            raise DcatError(_unknown_options(unknown, known))
        return cls(**data)
