"""The experiment configuration: a YAML file (or a shipped preset), validated strictly.

Unknown or mistyped keys are rejected with a message that names them and where they are, and
every field can be overridden on the command line (``--set train.max_epochs=2``). Presets live
in ``dcat/presets/*.yaml``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from dcat.errors import DcatError
from dcat.nn.encoders import is_encoder, list_encoders
from dcat.training.config import TrainConfig

__all__ = [
    "METHOD_NAMES",
    "DataConfig",
    "ExperimentConfig",
    "ModalityConfig",
    "SplitConfig",
    "TransferConfig",
    "apply_overrides",
    "list_presets",
    "load_config",
]

PRESETS = Path(__file__).parent / "presets"
METHOD_NAMES = ("dcat", "dcat_no_mcma", "logit_kd", "feature", "contrastive")
"""Transfer methods an experiment can run besides the unimodal baseline (always run)."""


@dataclass
class DataConfig:
    """Which data set, where, and how it is read.

    Attributes:
        dataset: ``utd_mhad_embedded`` (shipped with dcat), ``utd_mhad``, ``sp_sw_har``,
            ``avletters``, ``uestc_mmea``, ``cough``, ``vggsound`` or ``manifest`` (your own
            data, see the README).
        root: Folder (or manifest file) of the data; not needed for the embedded set.
        options: Keyword options of the reader (e.g. ``steps``, ``window_s``).
        normalization: ``zscore``, ``minmax`` or ``none``, or a mapping modality → kind;
            statistics are fitted on the training part of each split only.
    """

    dataset: str
    root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    normalization: str | dict[str, str] = "zscore"


@dataclass
class ModalityConfig:
    """One modality's network and its own training options (the paper's Table I columns).

    Attributes:
        encoder: Registered encoder name (``imu``, ``sequence``, ``video``, ...).
        options: Encoder options.
        dropout: Head dropout; ``None`` uses the experiment's ``dropout``.
        train: Training options for this modality as a target (e.g. ``lr``), over ``train``.
    """

    encoder: str
    options: dict[str, Any] = field(default_factory=dict)
    dropout: float | None = None
    train: dict[str, Any] = field(default_factory=dict)


@dataclass
class SplitConfig:
    """A split kind to run (see :func:`dcat.data.make_split`)."""

    kind: Literal["id", "ood"]
    test_size: float = 0.2
    val_size: float = 0.1
    train_subjects: list[int] | None = None
    val_subjects: list[int] | None = None
    test_subjects: list[int] | None = None


@dataclass
class TransferConfig:
    """An ordered pair: knowledge flows from the frozen ``source`` to the trained ``target``."""

    source: str
    target: str


@dataclass
class ExperimentConfig:
    """The protocol (docs/design.md, "The protocol") for one data set.

    Attributes:
        name: Experiment name (default output folder ``runs/<name>``).
        data: The data set.
        modalities: Modality → its network.
        splits: Split kinds to run (ID and/or OOD).
        seeds: Seeds; each seed draws its own split and initialisation.
        transfers: Source → target pairs.
        methods: Methods run for each pair besides the baseline, from :data:`METHOD_NAMES`.
        weight: λ of D-CAT and no-MCMA, and the weight α of the peers' baselines.
        lambdas: Extra λ values for D-CAT with MCMA (the Table IV sweep); may include ``weight``.
        d_out: Attention width shared by all modalities (512 in the paper).
        dropout: Head dropout of every network unless its modality sets one.
        temperature: Logit-distillation temperature ``T``.
        train: Training options (:class:`dcat.training.engine.TrainConfig` fields).
    """

    name: str
    data: DataConfig
    modalities: dict[str, ModalityConfig]
    splits: list[SplitConfig]
    seeds: list[int] = field(default_factory=lambda: [0])
    transfers: list[TransferConfig] = field(default_factory=list)
    methods: list[str] = field(default_factory=lambda: ["dcat", "dcat_no_mcma"])
    weight: float = 1.0
    lambdas: list[float] = field(default_factory=list)
    d_out: int = 512
    dropout: float = 0.5
    temperature: float = 4.0
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise DcatError("config: seeds must list at least one seed")
        if not self.splits:
            raise DcatError("config: splits must list at least one split kind")
        for name, modality in self.modalities.items():
            if not is_encoder(modality.encoder):
                raise DcatError(
                    f"config: modalities.{name}.encoder: unknown encoder {modality.encoder!r}; "
                    f"registered: {list_encoders()}"
                )
        for i, transfer in enumerate(self.transfers):
            for role in ("source", "target"):
                value = getattr(transfer, role)
                if value not in self.modalities:
                    raise DcatError(
                        f"config: transfers[{i}].{role}: modality {value!r} is not declared "
                        f"under modalities (declared: {sorted(self.modalities)})"
                    )
            if transfer.source == transfer.target:
                raise DcatError(
                    f"config: transfers[{i}]: source and target are both {transfer.source!r}"
                )
        unknown = [m for m in self.methods if m not in METHOD_NAMES]
        if unknown:
            raise DcatError(
                f"config: methods: unknown {unknown}; choose from {list(METHOD_NAMES)}"
            )
        for name, value in [
            ("weight", self.weight),
            *((f"lambdas[{i}]", v) for i, v in enumerate(self.lambdas)),
        ]:
            if not value >= 0:
                raise DcatError(f"config: {name} (λ) must be ≥ 0, got {value}")
        if self.d_out <= 0:
            raise DcatError(f"config: d_out must be positive, got {self.d_out}")
        # validates the training options (names and ranges) early, before any work
        self.train_config("", 0)
        for name in self.modalities:
            self.train_config(name, 0)

    def train_config(self, modality: str, seed: int) -> TrainConfig:
        """The training options for ``modality`` as a target at ``seed``."""
        options = {**self.train}
        if modality:
            options.update(self.modalities[modality].train)
        options.setdefault("progress", False)
        options["seed"] = seed
        try:
            return TrainConfig.from_dict(options)
        except ValueError as err:
            where = f"modalities.{modality}.train" if modality else "train"
            known = [f.name for f in fields(TrainConfig)]
            hint = did_you_mean(sorted(set(options) - set(known)), known)
            raise DcatError(f"config: {where}: {err}{hint}") from err

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def did_you_mean(unknown: list[str], known: typing.Iterable[str]) -> str:
    """``"; did you mean 'train'?"`` for the unknown names close to a known one, else ``""``."""
    guesses = [
        f"{name!r} for {match[0]!r}" if len(unknown) > 1 else repr(match[0])
        for name in unknown
        if (match := difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6))
    ]
    return f"; did you mean {', '.join(guesses)}?" if guesses else ""


def _yaml_problem(err: yaml.YAMLError) -> str:
    """`` at line L, column C: problem`` on one line (PyYAML's own message spans several)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {problem}"


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and build nested dataclasses."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _convert(value, option, where)
            except ValueError as err:
                errors.append(str(err))
        raise DcatError(errors[0] if errors else f"{where}: must not be empty")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise DcatError(f"{where}: must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise DcatError(f"{where}: must be a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise DcatError(f"{where}: must be a mapping, got {value!r}")
        _, item = typing.get_args(tp)
        return {k: _convert(v, item, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not (
        isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    ):
        raise DcatError(f"{where}: must be {_describe(tp)}, got {value!r}")
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise DcatError(f"{where}: must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        place = f" under {where}" if where else ""
        raise DcatError(
            f"unknown key(s) {unknown}{place}; known keys: {sorted(known)}"
            + did_you_mean(unknown, known)
        )
    missing = [
        f.name
        for f in fields(cls)
        if f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        place = f" under {where}" if where else ""
        raise DcatError(f"missing required key(s) {missing}{place}")
    values = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**values)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a raw config mapping."""
    for override in overrides:
        if "=" not in override:
            raise DcatError(f"override {override!r} must look like key.path=value")
        path, raw = override.split("=", 1)
        keys = path.strip().split(".")
        node = data
        for key in keys[:-1]:
            if not isinstance(node.get(key, {}), dict):
                raise DcatError(f"override {override!r}: {key!r} is not a mapping")
            node = node.setdefault(key, {})
        try:
            node[keys[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise DcatError(
                f"override {override!r}: the value is not valid YAML{_yaml_problem(err)}"
            ) from err
    return data


def list_presets() -> list[str]:
    """Names of the presets shipped with dcat."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def load_config(source: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a config file, or a preset by name, apply overrides and validate.

    Raises:
        DcatError: Naming the file and the key at fault.
    """
    path = Path(source)
    if not path.is_file():
        if str(source) in list_presets():
            path = PRESETS / f"{source}.yaml"
        else:
            raise DcatError(
                f"config {source!r}: no such file, and not a preset (presets: {list_presets()})"
            )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise DcatError(f"{path}: not a text (YAML) file ({err})") from err
    except yaml.YAMLError as err:
        raise DcatError(f"{path}: not valid YAML{_yaml_problem(err)}") from err
    if not isinstance(data, dict):
        raise DcatError(f"{path}: must hold a mapping of configuration keys")
    data = apply_overrides(data, overrides or [])
    try:
        return _build(ExperimentConfig, data, "")
    except ValueError as err:
        raise DcatError(f"{path}: {str(err).removeprefix('config: ')}") from err
