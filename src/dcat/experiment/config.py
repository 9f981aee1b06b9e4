"""The experiment configuration: a YAML file (or a shipped preset), validated strictly.

The schema is a set of pydantic models (strict types, no unknown keys, ranges, accepted names).
Unknown or mistyped keys are rejected with a one-line message that names them and where they
are (with a "did you mean"), and every field can be overridden on the command line
(``--set train.max_epochs=2``). Everything is checked when the file is read, before any output
is written. Presets live in ``dcat/experiment/presets/*.yaml``.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from dcat.errors import DcatError, did_you_mean
from dcat.io.skeleton import LAYOUTS, SkeletonLayout, get_layout
from dcat.io.virtual_imu import KINECT_V1_JOINTS, UTD_MHAD_PLACEMENT
from dcat.nn.encoders import is_encoder, list_encoders
from dcat.training.config import bound, expected_type
from dcat.training.methods import method_names

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "DeriveConfig",
    "ExperimentConfig",
    "ModalityConfig",
    "ResourcesConfig",
    "SourceConfig",
    "SplitConfig",
    "TransferConfig",
    "VirtualImuConfig",
    "apply_overrides",
    "did_you_mean",
    "list_presets",
    "load_config",
]

PRESETS = Path(__file__).parent / "presets"


class _KeysError(DcatError):
    """Unknown or missing keys of one section; the message names the section when known."""

    def __init__(self, problem: str, names: list[Any], known: list[str] | None = None) -> None:
        super().__init__(problem)
        self.problem, self.names, self.known = problem, names, known

    def render(self, where: str) -> str:
        place = f" under {where}" if where else ""
        if self.known is None:
            return f"{self.problem} {self.names}{place}"
        hint = did_you_mean([str(n) for n in self.names], self.known)
        return f"{self.problem} {self.names}{place}; known keys: {self.known}{hint}"


class _Section(BaseModel):
    """A mapping of the config: strict types, no unknown key, every required key given."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _check_keys(cls, data: Any) -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise DcatError(f"must be a mapping, got {data!r}")
        known = sorted(cls.model_fields)
        unknown = sorted((k for k in data if k not in cls.model_fields), key=str)
        if unknown:
            raise _KeysError("unknown key(s)", unknown, known)
        missing = [n for n, f in cls.model_fields.items() if f.is_required() and n not in data]
        if missing:
            raise _KeysError("missing required key(s)", missing)
        return data


class AugmentConfig(_Section):
    """Augmentations of one modality, applied to its training batches as a target, for the
    baseline, the plain reference and every transfer alike: inertial
    (:class:`dcat.data.augment.InertialAugment`), or, for a modality with a skeleton layout in
    ``data.skeletons``, skeletal (:class:`dcat.data.augment.SkeletonAugment`).

    Attributes:
        rotation: Largest random rotation in degrees: about a random axis (channels in x, y, z
            triads), or for a skeleton about its layout's vertical axis.
        scaling: Standard deviation of a random gain per sample.
        jitter: Standard deviation of added noise, in training standard deviations.
        time_warp: Standard deviation of the random local speed.
        crop: Largest fraction of the window cut off by a random temporal crop, which is
            resampled to the window's length; in ``[0, 1)``.
    """

    rotation: float = Field(0.0, ge=0, le=180)
    scaling: float = Field(0.0, ge=0)
    jitter: float = Field(0.0, ge=0)
    time_warp: float = Field(0.0, ge=0)
    crop: float = Field(0.0, ge=0, lt=1)


def _layout_entry(entry: Any) -> Any:
    if not isinstance(entry, str | dict):
        raise DcatError(
            f"a skeleton layout is a shipped layout's name ({sorted(LAYOUTS)}) or a mapping "
            f"with joints, parents, root and scale, got {entry!r}"
        )
    return entry


LayoutEntry = Annotated[str | dict[str, Any], BeforeValidator(_layout_entry)]
"""A skeleton layout: a shipped layout's name (``kinect_v1``, ...) or a mapping with ``joints``,
``parents``, ``root``, ``scale`` and optionally ``up_axis`` and ``dims``
(:meth:`dcat.io.skeleton.SkeletonLayout.from_mapping`)."""


class DataConfig(_Section):
    """Which data set, where, and how it is read.

    Attributes:
        dataset: A registered data set (``dcat datasets`` lists them with their options):
            ``utd_mhad_embedded`` is shipped with dcat, ``manifest`` reads your own data.
        root: Folder (or manifest file) of the data; not needed for the embedded set.
        options: Keyword options of the reader (e.g. ``steps``, ``window_s``).
        normalization: ``zscore``, ``minmax``, ``isotropic`` (points such as a skeleton's
            joints: one mean per axis and one scale, keeping bones and rotations geometric;
            :func:`dcat.io.normalization.fit_normalization`) or ``none``, or a mapping
            modality → kind;
            statistics are fitted on the training part of each split only.
        centering: Modality → per-sample centring of position-like channels before
            normalisation (:func:`dcat.io.normalization.center_positions`): ``mean`` removes
            where the body stood, ``root:J`` subtracts point ``J``'s trajectory, ``body`` (a
            modality with a layout in ``skeletons``) moves the layout's root joint to the origin
            in every frame and divides by the body's size (:func:`dcat.io.skeleton.
            body_normalize`). For skeletons (channels: joint by joint, x, y, z). Deployed models
            apply it too.
        augment: Modality → its augmentations (:class:`AugmentConfig`), used when it is
            trained; never counted as transfer.
        skeletons: Modality → its skeleton layout (:data:`LayoutEntry`): what its channels'
            joints are, their tree, the root, the body's scale and the vertical axis. Skeleton
            encoders take the bones from it, ``centering: body`` its root and scale, and the
            augmentation its vertical axis.
    """

    dataset: str
    root: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    normalization: str | dict[str, str] = "zscore"
    centering: dict[str, Annotated[str, Field(pattern=r"^(mean|root:\d+|body)$")]] = Field(
        default_factory=dict
    )
    augment: dict[str, AugmentConfig] = Field(default_factory=dict)
    skeletons: dict[str, LayoutEntry] = Field(default_factory=dict)

    @field_validator("skeletons")
    @classmethod
    def _layouts(cls, skeletons: dict[str, str | dict[str, Any]]) -> dict[str, Any]:
        for modality, entry in skeletons.items():
            try:
                get_layout(entry, modality)
            except DcatError as err:
                raise DcatError(f"config: data.skeletons.{modality}: {err}") from None
        return skeletons

    @model_validator(mode="after")
    def _body_needs_a_layout(self) -> DataConfig:
        for modality, mode in self.centering.items():
            if mode == "body" and modality not in self.skeletons:
                raise DcatError(
                    f"config: data.centering.{modality}: 'body' needs the modality's skeleton "
                    f"layout under data.skeletons (shipped: {sorted(LAYOUTS)})"
                )
        return self

    def layout(self, modality: str) -> SkeletonLayout | None:
        """The skeleton layout of ``modality``, or ``None`` when it has none."""
        entry = self.skeletons.get(modality)
        return None if entry is None else get_layout(entry, modality)

    def center_modes(self) -> dict[str, str]:
        """Modality → its centring mode as :func:`~dcat.io.normalization.center_positions`
        reads it (``body`` resolved to the layout's ``body:R:A:B:D``)."""
        modes = {}
        for modality, mode in self.centering.items():
            layout = self.layout(modality) if mode == "body" else None
            modes[modality] = layout.body_mode() if layout is not None else mode
        return modes


class VirtualImuConfig(_Section):
    """A virtual IMU synthesised from a skeleton (:func:`dcat.data.virtual.with_virtual_imu`).

    Attributes:
        like: The real inertial modality whose steps, rate and channels it takes.
        segment: The body segment for every sample (``right_wrist``, ``right_thigh``, ...;
            :data:`dcat.io.virtual_imu.SEGMENTS`).
        placement: Or: the segment per class, ``{label: segment}``, or ``utd_mhad`` (UTD-MHAD's
            documented placement: right wrist for actions 1–21, right thigh for 22–27). It reads
            the labels, so the modality may then only be the source of ``virtual``.
        joints: Joint names of the skeleton in order; ``kinect_v1`` is the 20-joint Kinect v1
            order of UTD-MHAD.
        smoothing: Savitzky–Golay window in seconds for the acceleration.
    """

    like: str
    segment: str | None = None
    placement: Literal["utd_mhad"] | dict[int, str] | None = None
    joints: Literal["kinect_v1"] | list[str] = "kinect_v1"
    smoothing: Annotated[float, Field(ge=0)] = 0.2

    @model_validator(mode="after")
    def _one_of(self) -> VirtualImuConfig:
        if (self.segment is None) == (self.placement is None):
            raise DcatError("give exactly one of segment and placement")
        return self

    def placement_map(self) -> dict[int, str] | None:
        """Label → segment, or ``None`` for one segment."""
        if self.placement == "utd_mhad":
            return dict(UTD_MHAD_PLACEMENT)
        return None if self.placement is None else dict(self.placement)

    def joint_names(self) -> tuple[str, ...]:
        return KINECT_V1_JOINTS if self.joints == "kinect_v1" else tuple(self.joints)


class DeriveConfig(_Section):
    """A modality made from another: a channel subset (e.g. the right-arm joints of a
    skeleton: a source that sees what a wrist sensor can sense), or a virtual IMU synthesised
    from a skeleton.

    Attributes:
        modality: The modality it is made from (a series ``(C, T)`` of the data set).
        channels: Its channel indices, in order.
        points: Or: indices of ``(x, y, z)`` points (joint ``j`` is channels ``3j … 3j+2``).
        virtual_imu: Or: a virtual IMU from the skeleton ``modality``
            (:class:`VirtualImuConfig`).
    """

    modality: str
    channels: list[Annotated[int, Field(ge=0)]] | None = None
    points: list[Annotated[int, Field(ge=0)]] | None = None
    virtual_imu: VirtualImuConfig | None = None

    @model_validator(mode="after")
    def _one_of(self) -> DeriveConfig:
        given = [self.channels, self.points, self.virtual_imu]
        if sum(g is not None for g in given) != 1:
            raise DcatError("give exactly one of channels, points and virtual_imu")
        return self

    def channel_indices(self) -> list[int]:
        """The channels of :attr:`modality` the derived modality holds."""
        if self.channels is not None:
            return list(self.channels)
        return [3 * p + axis for p in self.points or [] for axis in range(3)]


class TeacherModuleConfig(_Section):
    """A teacher trained elsewhere that is a user's own ``torch.nn.Module``
    (:func:`dcat.training.elsewhere.load_user_teacher`).

    Attributes:
        module: Its factory, ``package.module:function`` (importable, called with no argument).
        weights: Its weights, a safetensors file.
        card: Its model card, a JSON file in dcat's format (modality, kind, classes, input
            shape, rate, channels, normalisation; ``architecture`` may be ``{}``).
    """

    module: str
    weights: str
    card: str


class ModalityConfig(_Section):
    """One modality's network and its own training options (the paper's Table I columns).

    Attributes:
        encoder: Registered encoder name (``imu``, ``sequence``, ``video``, ``audio``, ...);
            left out, the data's kind chooses (:func:`dcat.experiment.runner.default_encoder`):
            ``video`` for frames, ``audio`` for sound, ``imu`` or ``sequence`` for series.
        options: Encoder options.
        dropout: Head dropout; ``None`` uses the experiment's ``dropout``.
        attention: Where the self-attention sits: ``serial`` (the paper's: attention → pool →
            head), ``residual`` (pre-norm, ``E + attention(LN(E))``) or ``side`` (the head pools
            the encoder; the attention only feeds the transfer loss) or ``none`` (no attention:
            no D-CAT); see :class:`dcat.nn.model.ModalityNet`.
        aux_head: Train an auxiliary head on the pooled attention output, so that a ``side``
            network's attention carries class information when it serves as a source.
        train: Training options for this modality as a target (e.g. ``lr``), over ``train``.
        derive: Make this modality from channels of another (:class:`DeriveConfig`) instead of
            reading it from the data set.
        teacher: A teacher trained elsewhere for this modality: a dcat run folder, one of its
            checkpoints, or a dcat export folder (:func:`dcat.training.elsewhere.load_teacher`),
            or a user's own module (:class:`TeacherModuleConfig`).
            Transfers from the modality learn from it, frozen; the experiment trains no
            baseline of it. Its card is checked against the data and its classes are mapped to
            the data's by name before anything trains.
    """

    encoder: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    dropout: float | None = None
    attention: Literal["serial", "residual", "side", "none"] = "serial"
    aux_head: bool = False
    train: dict[str, Any] = Field(default_factory=dict)
    derive: DeriveConfig | None = None
    teacher: str | TeacherModuleConfig | None = None

    @field_validator("encoder")
    @classmethod
    def _registered(cls, encoder: str | None) -> str | None:
        if encoder is not None and not is_encoder(encoder):
            raise DcatError(f"unknown encoder {encoder!r}; registered: {list_encoders()}")
        return encoder


def _subject_entry(entry: Any) -> Any:
    if isinstance(entry, bool) or not isinstance(entry, int | str):
        raise DcatError(f"a subject is a name or a number, as written in the data, got {entry!r}")
    return entry


SubjectEntry = Annotated[int | str, BeforeValidator(_subject_entry)]
"""A subject as written in the data: a name (``anna``, ``Verity``, ``'005'``) or a number
(``1``); ``1`` and ``'1'`` name the same subject, ``7`` does not name ``07``."""


class SplitConfig(_Section):
    """A split kind to run (see :func:`dcat.data.make_split`).

    Attributes:
        kind: ``id`` (stratified random, subjects shared) or ``ood`` (subject-disjoint).
        test_size: Fraction of samples (ID) or subjects (OOD) in the test part.
        val_size: Fraction of the training samples (ID) or subjects (OOD) held out for
            validation.
        train_subjects: OOD: the training subjects, as written in the data (names or numbers,
            e.g. ``[anna, ben]`` for a manifest's ``subject`` column, ``[1, 3, 5, 7]`` for
            UTD-MHAD); resolved by :func:`dcat.data.resolve_subjects`.
        val_subjects: OOD: the validation subjects, as written in the data.
        test_subjects: OOD: the test subjects, as written in the data (default: every subject
            not in the other two lists).
        val_rotation: OOD: the seeds rotate the held-out validation subjects through grouped
            folds of the training subjects.
        label_fractions: A label-efficiency curve: the labelled shares of the training part to
            run, each in ``[0, 1]`` (:func:`dcat.data.splits.labelled_share`: stratified by
            class and subject, nested, fixed by the seed). The rest of the training part stays
            in as unlabelled paired recordings; validation and test stay labelled.
        labelled_subjects: A curve over whole subjects (OOD): per point, the training
            subjects whose labels are known (``[]``: none); the others' samples stay in,
            unlabelled.
        labelled: One point, as the curves are expanded into (a share or a subject list);
            set by hand it runs that point alone. A point without labels (``0`` or ``[]``)
            needs teachers trained elsewhere; it trains only the methods that learn without
            labels (no baseline, no plain reference).
        name: Names the split in run folders and reports (default: ``kind``; a curve's points
            are named ``<name>_share<share>``, ``<name>_labelled<s1>+<s2>`` or, with no
            subject labelled, ``<name>_unlabelled``).
        curve: The curve a point belongs to (the name of the split it was expanded from): the
            report draws its points as one curve.
    """

    kind: Literal["id", "ood"]
    test_size: float = 0.2
    val_size: float = 0.1
    train_subjects: list[SubjectEntry] | None = None
    val_subjects: list[SubjectEntry] | None = None
    test_subjects: list[SubjectEntry] | None = None
    val_rotation: bool = False
    label_fractions: list[Annotated[float, Field(ge=0, le=1)]] | None = None
    labelled_subjects: list[list[SubjectEntry]] | None = None
    labelled: Annotated[float, Field(ge=0, le=1)] | list[SubjectEntry] | None = None
    name: str | None = None
    curve: str | None = None

    # the fields a split's fingerprint holds only when set (added after runs were recorded)
    LATER: ClassVar[tuple[str, ...]] = (
        "val_rotation", "label_fractions", "labelled_subjects", "labelled", "name", "curve",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_curve(self) -> SplitConfig:
        curves = [f for f in ("label_fractions", "labelled_subjects") if getattr(self, f)]
        if len(curves) == 2 or (curves and self.labelled is not None):
            raise DcatError(
                "config: splits: give one of label_fractions, labelled_subjects and labelled"
            )
        subjects = self.labelled_subjects or isinstance(self.labelled, list)
        if subjects and self.kind != "ood":
            raise DcatError("config: splits: labelled subjects apply to OOD splits (kind: ood)")
        return self

    @property
    def label(self) -> str:
        """The split's name: ``name``, else ``kind``."""
        return self.name or self.kind

    def points(self) -> list[SplitConfig]:
        """This split, or one split per point of its curve, each named for its point."""
        if self.label_fractions:
            values: list[float | list[SubjectEntry]] = list(dict.fromkeys(self.label_fractions))
        elif self.labelled_subjects:
            values = list(self.labelled_subjects)
        else:
            return [self]
        cleared = {"label_fractions": None, "labelled_subjects": None}
        return [
            self.model_copy(
                update={
                    **cleared,
                    "labelled": value,
                    "name": f"{self.label}_{_point_name(value)}",
                    "curve": self.label,
                }
            )
            for value in values
        ]

    def fingerprint(self) -> dict[str, Any]:
        """The fields, those of :attr:`LATER` only when set, so runs made before them match."""
        dumped = self.model_dump()
        return {k: v for k, v in dumped.items() if k not in self.LATER or v not in (None, False)}


def _point_name(value: float | list[Any]) -> str:
    """``share0.25``, ``labelled1+3``, or ``unlabelled`` (no subject labelled)."""
    if isinstance(value, list):
        return f"labelled{'+'.join(str(v) for v in value)}" if value else "unlabelled"
    return f"share{value:g}"


def _method_entry(entry: Any) -> Any:
    if not isinstance(entry, str | dict):
        raise DcatError(f"a method is a name or a mapping with a 'name' key, got {entry!r}")
    return entry


MethodEntry = Annotated[str | dict[str, Any], BeforeValidator(_method_entry)]
"""A transfer method: a name (``dcat``, ``dcat_no_mcma``, ``contrastive``, ...) or a mapping
with its options, e.g. ``{name: contrastive, temperature: 0.2}``."""


def _default_methods() -> list[MethodEntry]:
    """``ExperimentConfig.methods`` when the file names none."""
    return ["dcat", "dcat_no_mcma"]


class SourceConfig(_Section):
    """One source of a several-source transfer, with its own method and λ.

    Attributes:
        modality: The source modality.
        method: Its transfer method (a name or a mapping with options, as in ``methods``).
        weight: Its λ (default: the experiment's ``weight``).
    """

    modality: str
    method: MethodEntry
    weight: float | None = Field(None, ge=0, title="λ")


class TransferConfig(_Section):
    """Knowledge flows from frozen sources to the trained ``target``.

    Give ``source`` (one modality), or ``sources``: a list of modality names (each method of
    ``methods`` then trains one target with all of them at once), or a list of mappings
    :class:`SourceConfig` that each set their own method and λ (one model). One modality may
    appear several times with different methods: a combined objective from one source.
    """

    source: str | None = None
    sources: list[str | SourceConfig] | None = None
    target: str

    @model_validator(mode="after")
    def _one_form(self) -> TransferConfig:
        if (self.source is None) == (self.sources is None):
            raise DcatError("give exactly one of source and sources")
        if self.sources is not None:
            if not self.sources:
                raise DcatError("sources must list at least one source")
            named = [isinstance(s, str) for s in self.sources]
            if any(named) and not all(named):
                raise DcatError(
                    "sources are either all names (the methods list applies) or all mappings "
                    "with their own method"
                )
            if all(named) and len(set(self.sources)) != len(self.sources):
                raise DcatError(f"sources lists a modality twice: {self.sources}")
        return self

    @property
    def modalities(self) -> list[str]:
        """The source modalities, in order, each once."""
        if self.source is not None:
            return [self.source]
        items = self.sources or []
        return list(dict.fromkeys(s if isinstance(s, str) else s.modality for s in items))

    @property
    def label(self) -> str:
        """How results name the source(s): ``skeleton`` or ``skeleton+imu_thigh``."""
        return "+".join(self.modalities)

    @property
    def explicit(self) -> bool:
        """Whether every source sets its own method (one model, ``methods`` not applied)."""
        return self.sources is not None and not isinstance(self.sources[0], str)


class ResourcesConfig(_Section):
    """What one model of the grid holds while it trains (``dcat experiment --workers N``).

    Attributes:
        cpus: CPU cores per model; torch's intra-op threads are set to it in a sequential run,
            in a Ray worker and in each DDP process alike, 1 unless given (on the demo one
            thread was as fast as two on a 2-core CPU, and a worker then holds one core). Same
            threads, same seeds → the same metrics on the CPU, however the grid runs; each
            run's ``config.yaml`` records its ``threads``.
        gpus: GPUs per model (a fraction shares one), as Ray schedules them.
    """

    # defaults by keyword: type checkers then know ``ResourcesConfig()`` needs no argument
    cpus: int = Field(default=1, gt=0)
    gpus: float = Field(default=0.0, ge=0)

    @field_validator("cpus", mode="before")
    @classmethod
    def _default_cpus(cls, value: Any) -> Any:
        # ``cpus: null`` meant "torch's default" in earlier versions: now the one default
        return 1 if value is None else value


class ExperimentConfig(_Section):
    """The protocol (docs/design.md, "The protocol") for one data set.

    Attributes:
        name: Experiment name (default output folder ``runs/<name>``).
        data: The data set.
        modalities: Modality → its network.
        splits: Split kinds to run (ID and/or OOD).
        seeds: Seeds; each seed draws its own split and initialisation.
        transfers: Source → target pairs.
        methods: Methods run for each pair besides the baseline: names from
            :func:`dcat.training.methods.method_names`: the registered methods and their
            aliases, read when the config is checked, so a method registered after import
            counts), or mappings ``{name: ..., option: value}`` setting a
            method's options (see :mod:`dcat.training.methods`).
        weight: λ of D-CAT and no-MCMA, and the weight α of the peers' baselines.
        reference: Also train, per target, the plain reference: encoder → pool → head, no
            attention, no transfer (what a user would ship without dcat), shown in every
            report and compared with the pick.
        refit: After each split's models, retrain each seed's baseline, plain reference and
            pick of every target on the training and validation data together, for the epoch
            count each one's validation chose, and test those too (holding a subject out for
            validation costs the model data). The pick itself is chosen before, on validation.
        refit_sources: With ``refit``, first refit the baselines of the sources the refitted
            picks learn from, the same way, and let those refits learn from them: the teacher a
            user would train for the model they ship. Without it a refit learns from the
            sources of the grid, trained on the training part only.
        selection: The pick rule (:mod:`dcat.experiment.pick`): ``seed``, the model of best
            validation F1 in each seed, or ``mean``, the configuration of best validation F1
            averaged over the seeds (with ``val_rotation`` a grouped cross-validation score).
        lambdas: Extra λ values for D-CAT with MCMA (the Table IV sweep); may include ``weight``.
        d_out: Attention width shared by all modalities (512 in the paper).
        dropout: Head dropout of every network unless its modality sets one.
        temperature: Logit-distillation temperature ``T`` (for ``logit_kd`` entries that do not
            set their own).
        train: Training options (:class:`dcat.training.config.TrainConfig` fields).
        resources: CPUs and GPUs per model (:class:`ResourcesConfig`); not part of any model's
            fingerprint.

    Raises:
        DcatError: One line naming the key at fault (``config: <key path>: ...``).
    """

    name: str
    data: DataConfig
    modalities: dict[str, ModalityConfig]
    splits: list[SplitConfig]
    seeds: list[int] = Field(default_factory=lambda: [0])
    transfers: list[TransferConfig] = Field(default_factory=list)
    methods: list[MethodEntry] = Field(default_factory=_default_methods)
    weight: float = Field(1.0, ge=0, title="λ")
    reference: bool = True
    refit: bool = False
    refit_sources: bool = False
    selection: Literal["seed", "mean"] = "seed"
    lambdas: list[Annotated[float, Field(ge=0)]] = Field(default_factory=list, title="λ")
    d_out: int = Field(512, gt=0)
    dropout: float = 0.5
    temperature: float = Field(4.0, gt=0)
    train: dict[str, Any] = Field(default_factory=dict)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise DcatError(f"config: {_message(type(self), err)}") from err

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if not self.seeds:
            raise DcatError("config: seeds must list at least one seed")
        if not self.splits:
            raise DcatError("config: splits must list at least one split kind")
        # a curve runs as one split per point (each in its own folders and report section)
        self.splits = [point for split in self.splits for point in split.points()]
        names = [s.label for s in self.splits]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DcatError(
                f"config: splits: two splits are named {twice[0]!r}; give each its own name"
            )
        if self.refit_sources and not self.refit:
            raise DcatError(
                "config: refit_sources: needs refit: true (it refits the sources of the refits)"
            )
        for i, transfer in enumerate(self.transfers):
            role = "source" if transfer.source is not None else "sources"
            for where, value in [("target", transfer.target)] + [
                (role, m) for m in transfer.modalities
            ]:
                if value not in self.modalities:
                    raise DcatError(
                        f"config: transfers[{i}].{where}: modality {value!r} is not declared "
                        f"under modalities (declared: {sorted(self.modalities)})"
                    )
            if transfer.target in transfer.modalities:
                raise DcatError(
                    f"config: transfers[{i}]: source and target are both {transfer.target!r}"
                )
        for name, spec in self.modalities.items():
            if spec.derive is not None and spec.derive.modality == name:
                raise DcatError(f"config: modalities.{name}.derive: derived from itself")
        known = method_names()  # when asked: a method registered after import counts
        unknown = [
            m
            for m in self.methods
            if isinstance(m, str) and any(t not in known for t in m.split("+"))
        ]
        if unknown:
            raise DcatError(f"config: methods: unknown {unknown}; choose from {known}")
        # resolved by the planner here only to be checked, so a mistake is said when the file
        # is read (the schema does not plan; dcat.experiment.plan and .recipe do)
        from dcat.experiment.plan import method_variants
        from dcat.experiment.recipe import train_options

        method_variants(self)
        self._check_networks()
        self._check_unlabelled_points()
        # the training options (names, types and ranges), before any work
        train_options(self, "", 0)
        for name in self.modalities:
            train_options(self, name, 0)
        return self

    def _check_unlabelled_points(self) -> None:
        """A curve's point without labels trains no baseline, no plain reference and no method
        that needs labels; its sources must be teachers trained elsewhere."""
        from dcat.experiment.plan import source_modalities

        empty = [s.label for s in self.splits if s.labelled in (0, [])]
        here = [m for m in source_modalities(self, network=True) if not self.modalities[m].teacher]
        if empty and here:
            raise DcatError(
                f"config: splits: {empty[0]}: a point without labelled training samples has "
                f"no teacher for {here}: a source trained here learns from the point's labels "
                f"(give modalities.{here[0]}.teacher, a model trained elsewhere)"
            )

    def _check_networks(self) -> None:
        """A virtual modality placed per class (it reads the labels) is only ever training data;
        a modality whose config names no encoder gets the default of its data kind."""
        from dcat.experiment.plan import source_modalities

        targets = [t.target for t in self.transfers] or list(self.modalities)
        networks = dict.fromkeys([*targets, *source_modalities(self, network=True)])
        for name, spec in self.modalities.items():
            virtual = spec.derive.virtual_imu if spec.derive is not None else None
            if virtual is not None and virtual.placement is not None and name in networks:
                raise DcatError(
                    f"config: modalities.{name}.derive.virtual_imu: a per-class placement reads "
                    f"the labels, so {name!r} may only be the source of method 'virtual', "
                    "never a target or a network's input"
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain mappings and lists (as written to ``config.yaml``)."""
        return self.model_dump()


# ---------------------------------------------------------------------------------------------
# pydantic's errors → one line in the words of the older checks


def _strip(tp: Any) -> Any:
    """``Annotated[X, ...]`` → ``X``; ``X | None`` → ``X``."""
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(options) != 1:
                return tp
            tp = options[0]
        else:
            return tp


def _locate(
    model: type[BaseModel], loc: tuple[int | str, ...]
) -> tuple[str, FieldInfo | None, Any]:
    """The key path of ``loc`` (``splits[0].kind``), its last field and the type found there.

    pydantic's locations also hold the labels of union members (``str``, ``dict[str,str]``);
    they are skipped, so the path names keys only.
    """
    where = ""
    info: FieldInfo | None = None
    tp: Any = model
    for item in loc:
        tp = _strip(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and item in tp.model_fields:
            info = tp.model_fields[str(item)]
            tp = info.annotation
        elif origin in (typing.Union, types.UnionType):
            tp = Any  # a union member's label
            continue
        elif origin is list and isinstance(item, int):
            where += f"[{item}]"
            (tp,) = typing.get_args(tp)
            continue
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            tp = Any
        where = f"{where}.{item}" if where else str(item)
    return where, info, _strip(tp)


def _message(model: type[BaseModel], err: ValidationError) -> str:
    """One line for the first problem of ``err`` (without the ``config: `` prefix)."""
    error: ErrorDetails = err.errors()[0]
    loc = error["loc"]
    if loc and (loc[-1] == "[key]" or error["type"] == "invalid_key"):  # a number as a key
        where = _locate(model, loc[: -2 if loc[-1] == "[key]" else -1])[0]
        return f"{where}: key {error.get('input')!r} must be str"
    where, info, tp = _locate(model, error["loc"])
    value = error.get("input")
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, _KeysError):
        return cause.render(where)
    if isinstance(cause, DcatError):
        text = str(cause)
        if text.startswith("config: "):
            return text.removeprefix("config: ")
        return f"{where}: {text}" if where else text
    limit = bound(error)
    if limit is not None:
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        label = f" ({info.title})" if info is not None and info.title else ""
        return f"{where}{label} must be {limit}, got {value}"
    if error["type"] == "literal_error":
        return f"{where}: must be one of {list(typing.get_args(tp))}, got {value!r}"
    wanted = expected_type(error)
    if wanted is not None:
        return f"{where}: must be {wanted}, got {value!r}"
    return f"{where}: {error['msg']}" if where else error["msg"]


# ---------------------------------------------------------------------------------------------
# Reading


def _yaml_problem(err: yaml.YAMLError) -> str:
    """`` at line L, column C: problem`` on one line (PyYAML's own message spans several)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {problem}"


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
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise DcatError(f"{path}: {_message(ExperimentConfig, err)}") from err
