"""1D convolutional encoders for multichannel series: ``(B, C, T) → (B, S, d_model)``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, cast

from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.encoders.registry import register_encoder

__all__ = ["ConvBlock1d", "IMUEncoder", "ResidualConv1d", "SequenceEncoder"]


def _check_input(module: nn.Module, x: Tensor, in_channels: int, min_steps: int = 0) -> None:
    """``x`` is ``(B, in_channels, T)`` with ``T ≥ min_steps``, or a line naming ``module``."""
    if x.ndim != 3 or x.shape[1] != in_channels:
        raise DcatError(
            f"{type(module).__name__} expects input of shape (B, {in_channels}, T), "
            f"got {tuple(x.shape)}"
        )
    if x.shape[-1] < min_steps:
        raise DcatError(
            f"{type(module).__name__} needs at least {min_steps} time steps, got T={x.shape[-1]}"
        )


Norm = Literal["batch", "group", "none"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise DcatError(f"norm must be 'batch', 'group' or 'none', got {kind!r}")


class ConvBlock1d(nn.Sequential):
    """Conv1d → norm → ReLU, 'same' padding, the paper's building block (Fig. 2, top).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Odd kernel size.
        stride: Temporal stride.
        norm: ``"batch"`` (the paper's), ``"group"`` (independent of the batch, e.g. for
            tiny per-process batches under DDP) or ``"none"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        norm: Norm = "batch",
    ) -> None:
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise DcatError(f"kernel_size must be odd and positive, got {kernel_size}")
        super().__init__(
            nn.Conv1d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                bias=norm == "none",
            ),
            _norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class ResidualConv1d(nn.Module):
    """Base of the encoders that end in residual conv blocks ``width → width``.

    :meth:`_add_residual_blocks` builds them (``blocks``, each with its shortcut in
    ``shortcuts``); block ``i`` has stride 2, and its shortcut average-pools by 2, while the
    total downsampling is below ``downsample``.

    Shape:
        :meth:`_residual`: ``(B, width, T)`` → ``(B, width, ⌈T / downsample⌉)``.
    """

    def _add_residual_blocks(
        self,
        width: int,
        kernel_size: int,
        count: int,
        downsample: int,
        norm: Norm,
        *,
        count_name: str = "depth",
    ) -> None:
        """Add ``count`` blocks; ``count_name`` says in the error how the caller's options
        give ``count``, since ``downsample`` can be at most ``2**count``."""
        if downsample < 1 or downsample & (downsample - 1) or downsample > 2**count:
            raise DcatError(
                f"downsample must be a power of 2 no larger than 2**{count_name}={2**count}, "
                f"got {downsample}"
            )
        strides, remaining = [], downsample
        for _ in range(count):
            strides.append(2 if remaining > 1 else 1)
            remaining //= strides[-1]
        self.blocks = nn.ModuleList(
            ConvBlock1d(width, width, kernel_size, s, norm=norm) for s in strides
        )
        self.shortcuts = nn.ModuleList(
            nn.AvgPool1d(2, ceil_mode=True) if s == 2 else nn.Identity() for s in strides
        )

    def output_length(self, length: int) -> int:
        """Sequence length ``S`` for an input of ``length`` time steps."""
        for block in self.blocks:
            conv = cast(nn.Conv1d, cast(ConvBlock1d, block)[0])  # each block opens with its conv
            if conv.stride[0] == 2:
                length = (length + 1) // 2
        return length

    def _residual(self, h: Tensor) -> Tensor:
        for block, shortcut in zip(self.blocks, self.shortcuts, strict=True):
            h = block(h) + shortcut(h)
        return h


@register_encoder("imu")
class IMUEncoder(nn.Module):
    """The paper's IMU encoder (Fig. 2), a SAMoSA-style 1D CNN (Mollyn et al., 2022).

    conv block → max-pool → conv block → conv block → max-pool → dropout. Sequence length
    ``S = T // pool // pool`` (``T // 4`` by default).

    Args:
        in_channels: Sensor channels ``C`` (6 for accelerometer + gyroscope).
        widths: Output channels of the three conv blocks; ``d_model = widths[-1]``.
        kernel_sizes: Kernel size of each block (odd).
        pool: Max-pool size and stride after the first block and at the end.
        dropout: Dropout on the output embeddings.
        norm: Normalisation in the conv blocks (see :class:`ConvBlock1d`).

    Shape:
        input ``(B, C, T)`` with ``T ≥ pool²``, output ``(B, T // pool // pool, widths[-1])``.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        widths: Sequence[int] = (64, 128, 128),
        kernel_sizes: Sequence[int] = (7, 5, 3),
        pool: int = 2,
        dropout: float = 0.1,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        if in_channels <= 0:
            raise DcatError(f"in_channels must be positive, got {in_channels}")
        if len(widths) != 3 or len(kernel_sizes) != 3:
            raise DcatError(
                f"widths and kernel_sizes must each have 3 entries (three conv blocks), "
                f"got {list(widths)} and {list(kernel_sizes)}"
            )
        if pool < 1:
            raise DcatError(f"pool must be at least 1, got {pool}")
        self.in_channels = in_channels
        self.d_model = int(widths[-1])
        self.pool = pool
        self.features = nn.Sequential(
            ConvBlock1d(in_channels, widths[0], kernel_sizes[0], norm=norm),
            nn.MaxPool1d(pool),
            ConvBlock1d(widths[0], widths[1], kernel_sizes[1], norm=norm),
            ConvBlock1d(widths[1], widths[2], kernel_sizes[2], norm=norm),
            nn.MaxPool1d(pool),
            nn.Dropout(dropout),
        )

    def output_length(self, length: int) -> int:
        """Sequence length ``S`` for an input of ``length`` time steps."""
        return length // self.pool // self.pool

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``(B, C, T)`` into ``(B, T // pool², d_model)``."""
        _check_input(self, x, self.in_channels, self.pool**2)
        return self.features(x).transpose(1, 2)


@register_encoder("sequence")
class SequenceEncoder(ResidualConv1d):
    """A generic 1D-conv encoder for any multichannel series.

    For skeleton joints flattened per frame (``C = joints × 3``), EMG, a second IMU, MFCC
    frames. A 1×1 projection to ``d_model`` followed by ``depth`` residual conv blocks; block
    ``i`` has stride 2 while the total downsampling is below ``downsample``.

    Args:
        in_channels: Channels ``C``.
        d_model: Embedding width.
        depth: Number of residual conv blocks.
        kernel_size: Odd kernel size of the blocks.
        downsample: Total temporal downsampling, a power of 2 (1 keeps ``S = T``).
        dropout: Dropout on the output embeddings.
        norm: Normalisation in the conv blocks (see :class:`ConvBlock1d`).

    Shape:
        input ``(B, C, T)``, output ``(B, ⌈T / downsample⌉, d_model)``.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        d_model: int = 128,
        depth: int = 3,
        kernel_size: int = 5,
        downsample: int = 2,
        dropout: float = 0.1,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        if in_channels <= 0 or d_model <= 0 or depth <= 0:
            raise DcatError(
                f"in_channels, d_model and depth must be positive, got {in_channels}, "
                f"{d_model}, {depth}"
            )
        self.in_channels = in_channels
        self.d_model = d_model
        self.downsample = downsample
        self.project = nn.Conv1d(in_channels, d_model, 1)
        self._add_residual_blocks(d_model, kernel_size, depth, downsample, norm)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``(B, C, T)`` into ``(B, ⌈T / downsample⌉, d_model)``."""
        _check_input(self, x, self.in_channels)
        return self.dropout(self._residual(self.project(x))).transpose(1, 2)
