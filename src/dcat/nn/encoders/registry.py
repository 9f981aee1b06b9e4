"""Name → encoder factory registry, in the style of timm's ``@register_model``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from dcat.errors import DcatError

__all__ = ["accepts_option", "create_encoder", "is_encoder", "list_encoders", "register_encoder"]

_ENCODERS: dict[str, Callable[..., nn.Module]] = {}
Factory = TypeVar("Factory", bound=Callable[..., nn.Module])


def register_encoder(name: str) -> Callable[[Factory], Factory]:
    """Register an encoder factory (a class or function) under ``name``.

    The factory takes ``in_channels`` first and keyword options after, and returns a module
    with an integer ``d_model`` attribute.
    """

    def decorator(factory: Factory) -> Factory:
        if name in _ENCODERS and _ENCODERS[name] is not factory:
            raise DcatError(f"an encoder named {name!r} is already registered")
        _ENCODERS[name] = factory
        return factory

    return decorator


def list_encoders() -> list[str]:
    """Names of the registered encoders, sorted."""
    return sorted(_ENCODERS)


def is_encoder(name: str) -> bool:
    """Whether ``name`` is a registered encoder."""
    return name in _ENCODERS


def accepts_option(name: str, option: str) -> bool:
    """Whether the registered encoder ``name`` takes the keyword option ``option`` (e.g. a
    skeleton encoder's ``parents``); ``False`` for an unknown name."""
    factory = _ENCODERS.get(name)
    if factory is None:
        return False
    return option in inspect.signature(factory).parameters


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
    if name not in _ENCODERS:
        raise DcatError(
            f"unknown encoder {name!r}; registered encoders: {', '.join(list_encoders())}"
        )
    try:
        encoder = _ENCODERS[name](in_channels, **kwargs)
    except TypeError as err:
        raise DcatError(f"encoder {name!r}: {err}") from err
    # how to build it again: what an exported model records (see ModalityNet.architecture)
    encoder.dcat_spec = {"name": name, "in_channels": in_channels, "options": dict(kwargs)}
    return encoder
