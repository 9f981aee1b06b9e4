"""Name → data-set reader registry, in the style of timm's ``@register_model``.

A reader is a function returning a :class:`~dcat.data.paired.PairedDataset`. Its first
positional parameter, if any, is the data's location (``data.root`` in a config); its
keyword-only parameters are its options (``data.options``), checked by name and by type against
the signature before anything is read::

    @register_dataset("my_lab", summary="wrist IMU + chest IMU, 5 activities")
    def load_my_lab(root: str | Path, *, window_s: float = 2.0) -> PairedDataset: ...

The shipped readers live in :mod:`dcat.data` (one module each) and register on first lookup.
Other packages register theirs through the ``dcat.datasets`` entry-point group (each entry
point names a module to import), or by importing a module that calls :func:`register_dataset`
before the experiment runs. :data:`DATASETS` is a :class:`dcat.registry.Registry`, the idiom
of encoders and methods too.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dcat.errors import DcatError, did_you_mean
from dcat.registry import Registry

if TYPE_CHECKING:
    from dcat.data.paired import PairedDataset

__all__ = [
    "DATASETS",
    "DatasetEntry",
    "DatasetOption",
    "dataset_names",
    "get_dataset",
    "list_datasets",
    "register_dataset",
]

# The shipped readers, in the order they are listed to users.
_BUILTIN_MODULES = (
    "dcat.data.utd_mhad",
    "dcat.data.sp_sw_har",
    "dcat.data.avletters",
    "dcat.data.uestc_mmea",
    "dcat.data.cough",
    "dcat.data.vggsound",
    "dcat.data.manifest",
)
ENTRY_POINT_GROUP = "dcat.datasets"

Reader = TypeVar("Reader", bound=Callable[..., Any])


@dataclass(frozen=True)
class DatasetOption:
    """One keyword option of a reader.

    Attributes:
        name: The keyword.
        annotation: Its type as written in the signature (shown to users).
        default: Its default, or :data:`inspect.Parameter.empty` when required.
    """

    name: str
    annotation: str
    default: Any

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class DatasetEntry:
    """A registered data set.

    Attributes:
        name: The ``data.dataset`` name.
        reader: The function that reads it.
        summary: One line for ``dcat datasets``.
        root_defaults: Options that default to a path inside the data folder when not given,
            e.g. ``{"frame_cache": ".dcat_frames"}`` (decoded frames cached beside the data).
    """

    name: str
    reader: Callable[..., PairedDataset]
    summary: str = ""
    root_defaults: Mapping[str, str] = field(default_factory=dict)

    @property
    def needs_root(self) -> bool:
        """Whether the reader takes the data's location (``data.root``)."""
        return any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            for p in inspect.signature(self.reader).parameters.values()
        )

    @property
    def options(self) -> list[DatasetOption]:
        """The reader's keyword-only options a config can set, in signature order.

        Callback parameters (e.g. a Python ``progress`` function) are left out: a config
        cannot hold one.
        """
        return [
            DatasetOption(p.name, _annotation(p), p.default)
            for p in inspect.signature(self.reader).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and "Callable" not in _annotation(p)
        ]

    def check_options(self, options: Mapping[str, Any], where: str = "data.options") -> None:
        """Refuse unknown options and values of the wrong type, before anything is read.

        Args:
            options: Option name → value, as a config gives them.
            where: The key path named in messages.

        Raises:
            DcatError: ``"config: data.options: unknown option(s) [...] for data set 'NAME';
                known: [...]; did you mean ...?"`` or ``"config: data.options.KEY: <why>
                (expected TYPE, got VALUE)"``.
        """
        declared = {o.name: o for o in self.options}  # one signature inspection per call
        known = list(declared)
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise DcatError(
                f"config: {where}: unknown option(s) {unknown} for data set {self.name!r}; "
                f"known: {known}" + did_you_mean(unknown, known)
            )
        missing = [
            o.name
            for o in declared.values()
            if o.required and o.name not in options and o.name not in self.root_defaults
        ]
        if missing:
            raise DcatError(f"config: {where}: data set {self.name!r} needs option(s) {missing}")
        hints = _type_hints(self.reader)
        for key, value in options.items():
            if key not in hints or (key in self.root_defaults and value is None):
                continue
            problem = _type_problem(hints[key], value)
            if problem is not None:
                expected = declared[key].annotation
                raise DcatError(
                    f"config: {where}.{key}: {problem} (expected {expected}, got {value!r})"
                )

    def load(self, root: str | Path | None, options: Mapping[str, Any]) -> PairedDataset:
        """Check the options, then read the data set.

        Args:
            root: The data's location (ignored by readers that take none).
            options: The reader's keyword options.

        Raises:
            DcatError: Unknown or mistyped options, ``root`` missing or not found, or whatever
                the reader refuses in the files.
        """
        self.check_options(options)
        if not self.needs_root:
            return self.reader(**options)
        if root is None:
            raise DcatError(f"config: data.root is required for data set {self.name!r}")
        path = Path(root).expanduser()
        if not path.exists():
            raise DcatError(f"config: data.root: {path} not found")
        given = dict(options)
        for key, relative in self.root_defaults.items():
            if given.get(key) is None:
                given[key] = path / relative
        return self.reader(path, **given)


def _annotation(parameter: inspect.Parameter) -> str:
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return "any"
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "?")


def _type_hints(reader: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(reader)
    except (NameError, TypeError):  # a hint only importable under TYPE_CHECKING: skip types
        return {}


def _type_problem(hint: Any, value: Any) -> str | None:
    """Pydantic's reason why ``value`` does not fit ``hint``, or ``None`` when it does."""
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    try:
        TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True)).validate_python(value)
    except ValidationError as err:
        return str(err.errors()[0]["msg"])
    except Exception:  # a hint pydantic cannot build a validator for: the reader checks it
        return None
    return None


DATASETS: Registry[DatasetEntry] = Registry(
    "data set",
    ENTRY_POINT_GROUP,
    builtin=_BUILTIN_MODULES,
    unknown="config: {where}: unknown data set {name}; choose from {names}",
    duplicate="a data set named {name} is already registered",
    module_of=lambda entry: entry.reader.__module__,
)
"""The data-set registry: name → :class:`DatasetEntry`."""


def register_dataset(
    name: str, *, summary: str = "", root_defaults: Mapping[str, str] | None = None
) -> Callable[[Reader], Reader]:
    """Register a reader under ``name`` (see the module docstring).

    Args:
        name: The ``data.dataset`` name.
        summary: One line shown by ``dcat datasets``.
        root_defaults: Options defaulting to a path inside ``data.root`` when not given.

    Raises:
        DcatError: ``name`` is already registered to another reader.
    """

    def decorator(reader: Reader) -> Reader:
        entry = DatasetEntry(name, reader, summary, dict(root_defaults or {}))
        DATASETS.add(name, entry, same=lambda old, new: old.reader is new.reader)
        return reader

    return decorator


def list_datasets() -> list[DatasetEntry]:
    """Every registered data set, shipped ones first in their fixed order."""
    return [entry for _, entry in DATASETS.items()]


def dataset_names() -> list[str]:
    """Names of the registered data sets (see :func:`list_datasets`)."""
    return [entry.name for entry in list_datasets()]


def get_dataset(name: str, where: str = "data.dataset") -> DatasetEntry:
    """The registered data set ``name``.

    Raises:
        DcatError: ``"config: data.dataset: unknown data set 'NAME'; choose from a, b, ..."``.
    """
    return DATASETS.get(name, where)
