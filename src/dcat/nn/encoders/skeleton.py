"""Skeleton encoders: joint sequences ``(B, J·D, T)`` → ``(B, S, d_model)``.

The input is a skeleton flattened per frame, joint by joint (joint 0's x, y, z, then joint
1's, ...; ``D`` coordinates per joint, 3 or 2), as dcat's data sets and model cards lay it out.
Inside the encoder, so that the exported ONNX model computes them too, the input becomes up to
three **streams** of the same shape (:func:`skeleton_streams`):

* ``positions``: the joints as given;
* ``motion``: frame differences, ``x[t + 1] − x[t]`` (the last frame's is 0);
* ``bones``: each joint minus its parent (the root's is 0), from the layout's ``parents``
  (:data:`dcat.io.skeleton.LAYOUTS`; the experiment passes them from ``data.skeletons``).

Each stream is standardised by its own batch norm (its scale differs from the others': motion
is much smaller than positions) and the encoder learns from all of them. Two architectures:

* ``skeleton_tcn`` (:class:`SkeletonTCN`): a multi-stream temporal convolution network; one
  conv block per stream, summed (a concatenation of the streams convolved by one layer), then
  residual temporal conv blocks.
* ``skeleton_hcn`` (:class:`SkeletonHCN`): an HCN-style co-occurrence CNN (Li et al., "Co-
  occurrence feature learning from skeleton data for action recognition and detection with
  hierarchical aggregation", IJCAI 2018): point-level convolutions per joint, then the joints
  become channels so later convolutions see every joint at once (co-occurrence), streams fused
  by concatenation.

``skeleton`` names the default, the one of best validation F1 (:class:`SkeletonEncoder`):
``skeleton_tcn`` at width 64 with the ``positions`` and ``motion`` streams. Chosen on the
embedded UTD-MHAD skeleton through dcat's experiment (baselines only; cross-subject, training
subjects 1, 3, 5, 7 with one held out for validation in turn, seeds 0–3 = the four folds; 32
steps; body centring; rotation ±30° about the vertical, gain std 0.087, crop 0.1; AdamW, cosine
schedule, label smoothing 0.1, 40 epochs), validation macro-F1 mean ± std over the folds:

* ``skeleton_tcn`` width 64, positions + motion: 0.9005 ± 0.0474 (0.9095 ± 0.0511 with
  ``normalization: isotropic``), 8.5 s a model on one CPU thread;
* ``skeleton_tcn`` width 64, all three streams: 0.8127 ± 0.1379 under per-channel z-scores,
  0.8973 ± 0.0764 with ``isotropic`` (bones need geometric statistics, and then add nothing);
* ``skeleton_tcn`` width 128, all streams: 0.7288 ± 0.1614, 15.6 s;
* ``skeleton_hcn`` width 64, all streams: 0.8225 ± 0.0676, 56.2 s; width 32, positions +
  motion: 0.7723 ± 0.0651.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.encoders.conv1d import ConvBlock1d, Norm, ResidualConv1d, _check_input
from dcat.nn.encoders.registry import register_encoder

__all__ = [
    "STREAMS",
    "SkeletonEncoder",
    "SkeletonHCN",
    "SkeletonStreams",
    "SkeletonTCN",
    "skeleton_streams",
]

Stream = Literal["positions", "motion", "bones"]
STREAMS: tuple[Stream, ...] = ("positions", "motion", "bones")
"""The input streams an encoder can compute, in the order they are computed."""


def _bone_index(parents: Sequence[int]) -> Tensor:
    """``(J,)`` index of each joint's parent, the root (parent ``-1``) its own."""
    return torch.tensor([j if p < 0 else p for j, p in enumerate(parents)], dtype=torch.long)


def skeleton_streams(
    x: Tensor, streams: Sequence[str], parents: Sequence[int] | Tensor | None, dims: int = 3
) -> list[Tensor]:
    """The requested streams of a joint sequence.

    Args:
        x: ``(B, J·D, T)`` joints, channels joint by joint.
        streams: Names from :data:`STREAMS`, in the order wanted.
        parents: ``(J,)`` parent index per joint (``-1``, or the joint itself, for the root);
            needed for ``bones`` only.
        dims: ``D``, coordinates per joint.

    Returns:
        One ``(B, J·D, T)`` tensor per stream.
    """
    b, c, t = x.shape
    out = []
    for name in streams:
        if name == "positions":
            out.append(x)
        elif name == "motion":
            out.append(F.pad(x[..., 1:] - x[..., :-1], (0, 1)))
        elif name == "bones":
            if parents is None:
                raise DcatError("the bones stream needs the joints' parents (a skeleton layout)")
            index = parents if isinstance(parents, Tensor) else _bone_index(parents)
            joints = x.reshape(b, c // dims, dims, t)
            out.append((joints - joints.index_select(1, index.to(x.device))).reshape(b, c, t))
        else:
            raise DcatError(f"unknown skeleton stream {name!r}; streams: {list(STREAMS)}")
    return out


class SkeletonStreams(nn.Module):
    """Validated stream options and the per-stream input normalisation, shared by the encoders.

    Args:
        in_channels: ``J·D``.
        parents: Parent index per joint (root: ``-1``), or ``None`` (then no ``bones``).
        dims: ``D``, 3 or 2.
        streams: Names from :data:`STREAMS`, each at most once.
        norm: ``"batch"``: a batch norm per stream; otherwise the streams pass as they are.

    Shape:
        ``forward``: ``(B, J·D, T)`` → a list of ``len(streams)`` tensors ``(B, J·D, T)``.
    """

    def __init__(
        self,
        in_channels: int,
        parents: Sequence[int] | None,
        dims: int,
        streams: Sequence[str],
        norm: Norm,
    ) -> None:
        super().__init__()
        if dims not in (2, 3) or in_channels <= 0 or in_channels % dims:
            raise DcatError(
                f"a skeleton encoder needs dims 2 or 3 and in_channels a positive multiple of "
                f"it (joints × dims), got in_channels {in_channels}, dims {dims}"
            )
        joints = in_channels // dims
        streams = list(streams)
        unknown = [s for s in streams if s not in STREAMS]
        if not streams or unknown or len(set(streams)) != len(streams):
            raise DcatError(f"streams must list some of {list(STREAMS)}, each once, got {streams}")
        if parents is not None:
            parents = [int(p) for p in parents]
            if len(parents) != joints or any(not -1 <= p < joints for p in parents):
                raise DcatError(
                    f"parents must give a parent index in -1…{joints - 1} (−1: the root) for "
                    f"each of the {joints} joints of {in_channels} channels / dims {dims}, got "
                    f"{len(parents)} entries"
                )
            self.register_buffer("bone_index", _bone_index(parents), persistent=False)
        elif "bones" in streams:
            raise DcatError(
                "the bones stream needs the joints' parents: declare the modality's skeleton "
                "layout under data.skeletons, or give the encoder option parents"
            )
        else:
            self.bone_index = None
        self.streams, self.dims, self.joints = streams, dims, joints
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(in_channels) if norm == "batch" else nn.Identity() for _ in streams
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        streams = skeleton_streams(x, self.streams, self.bone_index, self.dims)
        return [norm(s) for norm, s in zip(self.norms, streams, strict=True)]


@register_encoder("skeleton_tcn")
class SkeletonTCN(ResidualConv1d):
    """Multi-stream temporal conv network for joint sequences.

    Each stream passes its own conv block (``C → width``); the blocks' outputs are summed and
    ``depth − 1`` residual conv blocks follow; block ``i`` has stride 2 while the total
    downsampling is below ``downsample`` (as :class:`~dcat.nn.encoders.conv1d.SequenceEncoder`).

    Args:
        in_channels: ``J·D``: joints × coordinates.
        parents: Parent index of each joint (``-1`` for the root), from the skeleton layout;
            ``None`` allows only ``positions`` and ``motion``.
        dims: ``D``, coordinates per joint (3 or 2).
        streams: Which of ``positions``, ``motion``, ``bones`` to compute.
        width: Conv channels, ``d_model``.
        depth: Conv layers in all (the stream stems count as one), ≥ 1.
        kernel_size: Odd temporal kernel size.
        downsample: Total temporal downsampling, a power of 2 no larger than ``2**(depth − 1)``.
        dropout: Dropout on the output embeddings.
        norm: ``"batch"`` (also a batch norm per input stream), ``"group"`` or ``"none"``.

    Shape:
        input ``(B, J·D, T)``, output ``(B, ⌈T / downsample⌉, width)``.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        parents: Sequence[int] | None = None,
        dims: int = 3,
        streams: Sequence[Stream] = STREAMS,
        width: int = 128,
        depth: int = 4,
        kernel_size: int = 5,
        downsample: int = 2,
        dropout: float = 0.1,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        if width <= 0 or depth <= 0:
            raise DcatError(f"width and depth must be positive, got {width}, {depth}")
        self.inputs = SkeletonStreams(in_channels, parents, dims, streams, norm)
        self.in_channels, self.d_model = in_channels, width
        self.stems = nn.ModuleList(
            ConvBlock1d(in_channels, width, kernel_size, norm=norm) for _ in self.inputs.streams
        )
        self._add_residual_blocks(
            width, kernel_size, depth - 1, downsample, norm, count_name="(depth - 1)"
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``(B, J·D, T)`` into ``(B, ⌈T / downsample⌉, width)``."""
        _check_input(self, x, self.in_channels, 1)
        streams = self.inputs(x)
        h = self.stems[0](streams[0])
        for stem, stream in zip(self.stems[1:], streams[1:], strict=True):
            h = h + stem(stream)
        return self.dropout(self._residual(h)).transpose(1, 2)


def _block2d(cin: int, cout: int, kernel: int | tuple[int, int], norm: Norm) -> nn.Sequential:
    """Conv2d ('same' padding) → norm → ReLU."""
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    padding = (kernel[0] // 2, kernel[1] // 2)
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, padding=padding, bias=norm == "none")]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(cout))
    elif norm == "group":
        layers.append(nn.GroupNorm(math.gcd(8, cout), cout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@register_encoder("skeleton_hcn")
class SkeletonHCN(nn.Module):
    """HCN-style co-occurrence CNN for joint sequences.

    Per stream, on the ``(D, T, J)`` grid: a 1×1 point-level conv, a 3×1 temporal conv; then
    the joints become the channels, ``(J, T, F)``, and two 3×3 convs mix all joints at once
    (co-occurrence features), max-pooled by 2. The streams are concatenated along channels and
    two more 3×3 conv blocks follow, each max-pooled by 2. The feature axis is averaged away.

    Args:
        in_channels: ``J·D``: joints × coordinates.
        parents: Parent index of each joint (``-1`` for the root), from the skeleton layout;
            ``None`` allows only ``positions`` and ``motion``.
        dims: ``D``, coordinates per joint (3 or 2).
        streams: Which of ``positions``, ``motion``, ``bones`` to compute.
        width: Channels of the last blocks, ``d_model`` (≥ 32); the per-stream blocks use
            ``width // 2`` and ``width // 4``. 64 halves HCN's own channels (64, 32, 32, 64,
            128, 256), at about the compute of :class:`SkeletonTCN` at width 128.
        dropout: Dropout after the per-stream blocks and on the output embeddings.
        norm: ``"batch"`` (also a batch norm per input stream), ``"group"`` or ``"none"``.

    Shape:
        input ``(B, J·D, T)`` with ``T ≥ 8``, output ``(B, T // 8, width)``.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        parents: Sequence[int] | None = None,
        dims: int = 3,
        streams: Sequence[Stream] = STREAMS,
        width: int = 64,
        dropout: float = 0.1,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        if width < 32:  # the feature axis (width / 4) is max-pooled by 2 three times
            raise DcatError(f"width must be at least 32, got {width}")
        self.inputs = SkeletonStreams(in_channels, parents, dims, streams, norm)
        self.in_channels, self.d_model = in_channels, width
        half, quarter, joints = width // 2, width // 4, self.inputs.joints
        self.points = nn.ModuleList(
            nn.Sequential(_block2d(dims, half, 1, norm), _block2d(half, quarter, (3, 1), norm))
            for _ in self.inputs.streams
        )
        self.cooccurrence = nn.ModuleList(
            nn.Sequential(
                _block2d(joints, quarter, 3, norm),
                _block2d(quarter, half, 3, norm),
                nn.MaxPool2d(2),
                nn.Dropout(dropout),
            )
            for _ in self.inputs.streams
        )
        self.fused = nn.Sequential(
            _block2d(half * len(self.inputs.streams), width, 3, norm),
            nn.MaxPool2d(2),
            _block2d(width, width, 3, norm),
            nn.MaxPool2d(2),
        )
        self.dropout = nn.Dropout(dropout)

    def output_length(self, length: int) -> int:
        """Sequence length ``S`` for an input of ``length`` time steps."""
        return length // 8

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``(B, J·D, T)`` into ``(B, T // 8, width)``."""
        _check_input(self, x, self.in_channels, 8)
        b, _, t = x.shape
        parts = []
        for stream, points, cooccurrence in zip(
            self.inputs(x), self.points, self.cooccurrence, strict=True
        ):
            grid = stream.reshape(b, self.inputs.joints, self.inputs.dims, t).permute(0, 2, 3, 1)
            h = points(grid)  # (B, width/4, T, J)
            parts.append(cooccurrence(h.permute(0, 3, 2, 1)))  # joints as channels: (B, J, T, F)
        h = self.fused(torch.cat(parts, dim=1))  # (B, width, T // 8, F // 8)
        return self.dropout(h.mean(dim=-1)).transpose(1, 2)


# the default of the family: the architecture of best validation F1 (see the module docstring)
@register_encoder("skeleton")
class SkeletonEncoder(SkeletonTCN):
    """The default skeleton encoder: :class:`SkeletonTCN` at the options of best validation F1
    (see the module): width 64, the ``positions`` and ``motion`` streams.

    Args:
        in_channels: ``J·D``: joints × coordinates.
        parents: Parent index of each joint, from the skeleton layout (only for ``bones``).
        dims: ``D``, coordinates per joint (3 or 2).
        streams: Which of ``positions``, ``motion``, ``bones`` to compute.
        width: Conv channels, ``d_model``.
        depth: Conv layers in all (the stream stems count as one), ≥ 1.
        kernel_size: Odd temporal kernel size.
        downsample: Total temporal downsampling, a power of 2 no larger than ``2**(depth − 1)``.
        dropout: Dropout on the output embeddings.
        norm: ``"batch"``, ``"group"`` or ``"none"``.

    Shape:
        input ``(B, J·D, T)``, output ``(B, ⌈T / downsample⌉, width)``.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        parents: Sequence[int] | None = None,
        dims: int = 3,
        streams: Sequence[Stream] = ("positions", "motion"),
        width: int = 64,
        depth: int = 4,
        kernel_size: int = 5,
        downsample: int = 2,
        dropout: float = 0.1,
        norm: Norm = "batch",
    ) -> None:
        super().__init__(
            in_channels, parents=parents, dims=dims, streams=streams, width=width, depth=depth,
            kernel_size=kernel_size, downsample=downsample, dropout=dropout, norm=norm,
        )  # fmt: skip
