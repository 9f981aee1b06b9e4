"""Name → encoder factory registry, in the style of timm's ``@register_model``.

A :class:`dcat.registry.Registry` like the methods' and data sets': the shipped encoders
register when :mod:`dcat.nn.encoders` is imported, plug-in packages through the
``dcat.encoders`` entry-point group.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from dcat.errors import DcatError
from dcat.registry import Registry

__all__ = [
    "ENCODERS",
    "accepts_option",
    "create_encoder",
    "is_encoder",
    "list_encoders",
    "register_encoder",
]

ENCODERS: Registry[Callable[..., nn.Module]] = Registry(
    "encoder",
    "dcat.encoders",
    builtin=("dcat.nn.encoders",),
    unknown="unknown encoder {name}; registered encoders: {names}",
    duplicate="an encoder named {name} is already registered",
    alphabetical=True,
)
"""The encoder registry: name → factory (a class or function)."""
Factory = TypeVar("Factory", bound=Callable[..., nn.Module])


def register_encoder(name: str) -> Callable[[Factory], Factory]:
    """Register an encoder factory (a class or function) under ``name``.

    The factory takes ``in_channels`` first and keyword options after, and returns a module
    with an integer ``d_model`` attribute.
    """

    def decorator(factory: Factory) -> Factory:
        ENCODERS.add(name, factory, same=lambda old, new: old is new)
        return factory

    return decorator


def list_encoders() -> list[str]:
    """Names of the registered encoders, sorted."""
    return ENCODERS.names()


def is_encoder(name: str) -> bool:
    """Whether ``name`` is a registered encoder."""
    return name in ENCODERS


def accepts_option(name: str, option: str) -> bool:
    """Whether the registered encoder ``name`` takes the keyword option ``option`` (e.g. a
    skeleton encoder's ``parents``); ``False`` for an unknown name."""
    if name not in ENCODERS:
        return False
    return option in inspect.signature(ENCODERS.get(name)).parameters


def create_encoder(name: str, in_channels: int, **kwargs: Any) -> nn.Module:
    """Build a registered encoder.

    Args:
        name: Registered name, e.g. ``"imu"`` or ``"sequence"``.
        in_channels: Input channels ``C``.
        **kwargs: The encoder's own options.

    Returns:
        The encoder, with a ``dcat_spec`` attribute ``{"name", "in_channels", "options"}`` from
        which :meth:`dcat.nn.model.ModalityNet.from_architecture` rebuilds it.

    Raises:
        DcatError: For an unknown name (the message lists the known ones) or unknown options.
    """
    factory = ENCODERS.get(name)
    try:
        encoder = factory(in_channels, **kwargs)
    except TypeError as err:
        raise DcatError(f"encoder {name!r}: {err}") from err
    # how to build it again: what an exported model records (see ModalityNet.architecture)
    spec = {"name": name, "in_channels": in_channels, "options": dict(kwargs)}
    setattr(encoder, "dcat_spec", spec)  # noqa: B010 (a plain attribute, typed Module setattr)
    return encoder
