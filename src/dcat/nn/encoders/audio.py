"""Audio encoder: log-mel front end + PANNs CNN14-style 2D CNN, ``(B, samples) → (B, S, d)``.

The paper's audio branch (Sec. V-B.3, Fig. 4): STFT → mel filterbank → logarithm, then the
CNN14 backbone of PANNs (Kong et al., 2020, arXiv:1912.10211). Pretrained PANNs checkpoints are
optional *local* files (nothing is downloaded); :func:`load_panns_weights` maps their parameter
names onto this module and reports what did not match.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcat.errors import DcatError
from dcat.nn.encoders.registry import register_encoder
from dcat.nn.weights import load_torch_file

__all__ = ["AudioEncoder", "ConvBlock2d", "LogMel", "SpecAugment", "load_panns_weights"]

# PANNs' log-mel is in decibels, 10·log10(mel); ours is the natural log. The two differ by this
# factor, which :func:`load_panns_weights` folds into bn0's running statistics.
_DB_PER_NEPER = 10.0 / math.log(10.0)

# Parts of a PANNs checkpoint that have no counterpart here on purpose: the STFT and mel front
# end are recomputed from the configuration, and the AudioSet classifier is replaced by D-CAT's
# attention + head.
_PANNS_IGNORED = ("spectrogram_extractor.", "logmel_extractor.", "fc_audioset.")


def _mono_batch(name: str, x: Tensor) -> Tensor:
    """``(B, samples)`` or ``(B, 1, samples)`` → ``(B, samples)``, else a ValueError."""
    if x.ndim == 3 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 2:
        raise DcatError(
            f"{name} expects a mono waveform of shape (B, samples) or (B, 1, samples), "
            f"got {tuple(x.shape)}"
        )
    return x


class LogMel(nn.Module):
    """Log-mel spectrogram: power STFT → slaney mel filterbank → natural log.

    The STFT uses a periodic Hann window of ``n_fft`` samples, ``center=True`` with reflect
    padding of ``n_fft // 2`` on both sides (as PANNs and librosa do), and the power spectrum
    ``|X|²``. The filterbank is ``librosa.filters.mel(htk=False, norm="slaney")``, computed once.

    The logarithm is natural, ``log(mel + eps)``. PANNs uses decibels, ``10·log10(mel)``, i.e.
    the same values times ``10 / ln 10 ≈ 4.343``; :func:`load_panns_weights` compensates for it.

    Everything is computed in float32, also under autocast: the log of small mel energies and the
    squared STFT magnitudes lose too much in bf16/fp16.

    Args:
        sample_rate: Sampling rate of the waveform in Hz.
        n_fft: FFT size and window length in samples.
        hop_length: Hop between frames in samples.
        n_mels: Number of mel bands.
        f_min: Lowest mel frequency in Hz.
        f_max: Highest mel frequency in Hz; ``None`` means ``sample_rate / 2``.
        eps: Added before the logarithm so silence gives ``log(eps)``, not ``-inf``.

    Shape:
        input ``(B, samples)`` or ``(B, 1, samples)`` with ``samples > n_fft // 2``, output
        ``(B, n_mels, frames)`` float32 with ``frames = 1 + samples // hop_length`` (even
        ``n_fft``; see :meth:`num_frames`).
    """

    window: Tensor
    mel_fb: Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 320,
        n_mels: int = 64,
        f_min: float = 50.0,
        f_max: float | None = None,
        eps: float = 1e-10,
    ) -> None:
        super().__init__()
        f_max = sample_rate / 2 if f_max is None else f_max
        if min(sample_rate, n_fft, hop_length, n_mels) <= 0:
            raise DcatError(
                f"sample_rate, n_fft, hop_length and n_mels must be positive, got {sample_rate}, "
                f"{n_fft}, {hop_length}, {n_mels}"
            )
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise DcatError(
                f"need 0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2}, "
                f"got f_min={f_min}, f_max={f_max}"
            )
        if eps <= 0:
            raise DcatError(f"eps must be positive, got {eps}")
        # librosa is imported here only, so `import dcat` stays light for non-audio users.
        import librosa

        fb = librosa.filters.mel(
            sr=sample_rate,
            n_fft=n_fft,
            n_mels=n_mels,
            fmin=f_min,
            fmax=f_max,
            htk=False,
            norm="slaney",
        )
        # Non-persistent: both follow from the configuration, and keeping them out of the state
        # dict lets checkpoints (ours and PANNs') load without front-end keys.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("mel_fb", torch.as_tensor(fb, dtype=torch.float32), persistent=False)
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.f_min = float(f_min)
        self.f_max = float(f_max)
        self.eps = eps

    @property
    def min_samples(self) -> int:
        """Fewest samples one waveform may have: reflect padding needs ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    def num_frames(self, samples: int) -> int:
        """Frames for ``samples`` samples: ``1 + samples // hop_length`` for even ``n_fft``."""
        return 1 + (samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length

    def forward(self, waveform: Tensor) -> Tensor:
        """Convert ``(B, samples)`` or ``(B, 1, samples)`` into ``(B, n_mels, frames)`` float32."""
        wave = _mono_batch(type(self).__name__, waveform)
        if wave.shape[-1] < self.min_samples:
            raise DcatError(
                f"{type(self).__name__} needs at least n_fft // 2 + 1 = {self.min_samples} "
                f"samples per waveform (reflect padding), got {wave.shape[-1]}"
            )
        with torch.autocast(device_type=wave.device.type, enabled=False):
            spec = torch.stft(
                wave.float(),
                self.n_fft,
                hop_length=self.hop_length,
                win_length=self.n_fft,
                window=self.window.float(),
                center=True,
                pad_mode="reflect",
                return_complex=True,
            )
            # re² + im² rather than |X|²: abs() has an undefined gradient at exactly 0.
            power = torch.view_as_real(spec).pow(2).sum(-1)  # (B, n_fft // 2 + 1, frames)
            mel = torch.matmul(self.mel_fb.float(), power)  # (B, n_mels, frames)
            return torch.log(mel + self.eps)


class SpecAugment(nn.Module):
    """SpecAugment-style time and frequency masking (Park et al., 2019), as in PANNs.

    In training mode each sample gets ``time_masks`` stripes of random width in
    ``[0, time_width]`` frames and ``freq_masks`` stripes of width in ``[0, freq_width]`` bins, at
    uniformly random positions; masked entries become 0. In eval mode it is the identity.

    Zero is the fill value because :class:`AudioEncoder` masks *after* ``bn0``, where each mel
    bin is normalised to zero mean: there, filling with 0 is filling with the mean (PANNs does
    the same). On a raw log-mel spectrogram, normalise first or zero is an unusually loud value.

    Randomness comes from torch's global generator on the input's device, so
    ``torch.manual_seed`` makes the masks reproducible.

    Args:
        time_masks: Number of time stripes per sample.
        time_width: Largest time stripe width in frames.
        freq_masks: Number of frequency stripes per sample.
        freq_width: Largest frequency stripe width in mel bins.

    Shape:
        input and output ``(B, n_mels, frames)``.
    """

    def __init__(
        self,
        time_masks: int = 2,
        time_width: int = 16,
        freq_masks: int = 2,
        freq_width: int = 8,
    ) -> None:
        super().__init__()
        if min(time_masks, time_width, freq_masks, freq_width) < 0:
            raise DcatError(
                f"mask counts and widths must be non-negative, got time_masks={time_masks}, "
                f"time_width={time_width}, freq_masks={freq_masks}, freq_width={freq_width}"
            )
        self.time_masks = time_masks
        self.time_width = time_width
        self.freq_masks = freq_masks
        self.freq_width = freq_width

    @staticmethod
    def _stripes(batch: int, size: int, count: int, width: int, device: torch.device) -> Tensor:
        """Boolean ``(batch, size)``: true inside any of ``count`` random stripes per row."""
        if count == 0 or width == 0:
            return torch.zeros(batch, size, dtype=torch.bool, device=device)
        widths = torch.randint(0, min(width, size) + 1, (batch, count), device=device)
        # rand < 1, so the start lies in [0, size - width] and the stripe fits.
        starts = (torch.rand(batch, count, device=device) * (size - widths + 1)).long()
        pos = torch.arange(size, device=device)
        inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])
        return inside.any(dim=1)

    def forward(self, spec: Tensor) -> Tensor:
        """Mask ``(B, n_mels, frames)`` in training mode; return it unchanged in eval mode."""
        if spec.ndim != 3:
            raise DcatError(
                f"{type(self).__name__} expects a spectrogram of shape (B, n_mels, frames), "
                f"got {tuple(spec.shape)}"
            )
        if not self.training:
            return spec
        batch, n_mels, frames = spec.shape
        time = self._stripes(batch, frames, self.time_masks, self.time_width, spec.device)
        freq = self._stripes(batch, n_mels, self.freq_masks, self.freq_width, spec.device)
        return spec.masked_fill(time[:, None, :] | freq[:, :, None], 0.0)

    def extra_repr(self) -> str:
        return (
            f"time_masks={self.time_masks}, time_width={self.time_width}, "
            f"freq_masks={self.freq_masks}, freq_width={self.freq_width}"
        )


class ConvBlock2d(nn.Module):
    """PANNs' ConvBlock: (conv3×3 → BN → ReLU) × 2 → average pool ``pool × pool``.

    Attribute names (``conv1``, ``bn1``, ``conv2``, ``bn2``) equal PANNs', so a checkpoint's
    ``conv_block{i}.*`` keys map onto ``blocks.{i-1}.*`` unchanged.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        pool: Average-pool size and stride on both axes; 1 keeps the size.

    Shape:
        input ``(B, in_channels, T, F)``, output ``(B, out_channels, T // pool, F // pool)``.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.pool = pool
        # PANNs' init_layer: Xavier-uniform convolutions (BN keeps weight 1, bias 0).
        nn.init.xavier_uniform_(self.conv1.weight)
        nn.init.xavier_uniform_(self.conv2.weight)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(B, C_in, T, F)`` to ``(B, C_out, T // pool, F // pool)``."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, self.pool) if self.pool > 1 else x


@register_encoder("audio")
class AudioEncoder(nn.Module):
    """The paper's audio encoder (Fig. 4): log-mel + a PANNs CNN14-style CNN (Kong et al., 2020).

    waveform → :class:`LogMel` → ``bn0`` (per mel bin) → :class:`SpecAugment` (training only) →
    ``len(widths)`` :class:`ConvBlock2d` (2×2 average pooling after each but the last), each
    followed by dropout → mean over the frequency axis → a sequence over time. With a projection,
    ``fc1`` + ReLU + dropout map each step to ``d_model`` (PANNs' ``fc1``; the paper's final
    "fully connected layer with ReLU and dropout").

    Unlike PANNs, time is not pooled away: the pooled frames are the attention sequence,
    ``S = frames // 2 ** (len(widths) - 1)`` with ``frames = 1 + samples // hop_length``.

    The default front end (16 kHz, ``n_fft=1024``, ``hop_length=320``) is the brief's; the
    published ``Cnn14_16k`` checkpoint was trained with ``n_fft=512``, ``hop_length=160``,
    ``f_max=8000`` and ``Cnn14`` (32 kHz) with ``n_fft=1024``, ``hop_length=320``,
    ``f_max=14000`` — match them when loading those weights.

    Args:
        in_channels: Must be 1: the encoder takes a mono waveform.
        sample_rate: Sampling rate in Hz (see :class:`LogMel`).
        n_fft: FFT size.
        hop_length: STFT hop in samples.
        n_mels: Mel bands; at least ``2 ** (len(widths) - 1)`` so the frequency axis survives
            the pooling.
        f_min: Lowest mel frequency in Hz.
        f_max: Highest mel frequency in Hz; ``None`` means ``sample_rate / 2``.
        widths: Output channels of the conv blocks; CNN14 has ``(64, 128, ..., 2048)``, fewer
            or narrower blocks make small models.
        d_model: Output width; ``None`` means ``widths[-1]``.
        projection: Whether ``fc1`` (linear + ReLU) follows; ``None`` adds it only when
            ``d_model != widths[-1]``. ``True`` with ``d_model == widths[-1]`` reproduces
            PANNs' ``fc1`` (and lets its weights load).
        dropout: Dropout after every conv block and after ``fc1`` (PANNs uses 0.2 there).
        spec_augment: ``True`` for the default :class:`SpecAugment`, ``False`` for none, or a
            configured :class:`SpecAugment`.
        weights: Optional path of a local PANNs checkpoint, loaded with
            :func:`load_panns_weights`; its report is kept in ``load_report``.

    Shape:
        input ``(B, samples)`` or ``(B, 1, samples)`` with ``samples >= min_samples``, output
        ``(B, output_length(samples), d_model)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 320,
        n_mels: int = 64,
        f_min: float = 50.0,
        f_max: float | None = None,
        widths: Sequence[int] = (64, 128, 256, 512, 1024, 2048),
        d_model: int | None = None,
        projection: bool | None = None,
        dropout: float = 0.2,
        spec_augment: bool | SpecAugment = True,
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        if in_channels != 1:
            raise DcatError(
                f"AudioEncoder takes a mono waveform, so in_channels must be 1, got "
                f"{in_channels}; mix the channels down (e.g. average them) first"
            )
        if len(widths) == 0 or min(widths) <= 0:
            raise DcatError(f"widths must be a non-empty list of positive ints, got {widths}")
        if d_model is not None and d_model <= 0:
            raise DcatError(f"d_model must be positive, got {d_model}")
        if not 0.0 <= dropout < 1.0:
            raise DcatError(f"dropout must be in [0, 1), got {dropout}")
        self.time_pool = 2 ** (len(widths) - 1)
        if n_mels < self.time_pool:
            raise DcatError(
                f"n_mels={n_mels} is too few for {len(widths)} conv blocks: the frequency axis "
                f"is pooled by {self.time_pool}, so n_mels must be at least {self.time_pool}"
            )
        self.logmel = LogMel(sample_rate, n_fft, hop_length, n_mels, f_min, f_max)
        self.bn0 = nn.BatchNorm2d(n_mels)
        if isinstance(spec_augment, SpecAugment):
            self.spec_augment: nn.Module = spec_augment
        else:
            self.spec_augment = SpecAugment() if spec_augment else nn.Identity()
        channels = [1, *(int(w) for w in widths)]
        self.blocks = nn.ModuleList(
            ConvBlock2d(cin, cout, pool=2 if i < len(widths) - 1 else 1)
            for i, (cin, cout) in enumerate(itertools.pairwise(channels))
        )
        self.dropout = nn.Dropout(dropout)
        out = int(d_model or channels[-1])
        if projection is None:
            projection = out != channels[-1]
        if not projection and out != channels[-1]:
            raise DcatError(
                f"d_model={out} differs from widths[-1]={channels[-1]}, which needs "
                f"projection=True (or None)"
            )
        self.fc1: nn.Linear | None = nn.Linear(channels[-1], out) if projection else None
        if self.fc1 is not None:
            # PANNs' init_layer: Xavier-uniform weight, zero bias.
            nn.init.xavier_uniform_(self.fc1.weight)
            nn.init.zeros_(self.fc1.bias)
        self.in_channels = 1
        self.d_model = out
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.load_report: dict[str, list[str]] | None = None
        if weights is not None:
            load_panns_weights(self, weights)

    @property
    def min_samples(self) -> int:
        """Fewest samples that give a sequence of length at least 1."""
        # Smallest s with num_frames(s) >= time_pool (odd n_fft pads one sample less).
        needed = (self.time_pool - 1) * self.hop_length + self.logmel.n_fft % 2
        return max(self.logmel.min_samples, needed)

    def output_length(self, samples: int) -> int:
        """Sequence length ``S`` for a waveform of ``samples`` samples."""
        return self.logmel.num_frames(samples) // self.time_pool

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``(B, samples)`` or ``(B, 1, samples)`` into ``(B, S, d_model)``."""
        wave = _mono_batch(type(self).__name__, x)
        if wave.shape[-1] < self.min_samples:
            raise DcatError(
                f"AudioEncoder needs at least {self.min_samples} samples per waveform "
                f"({len(self.blocks)} conv blocks pool time by {self.time_pool}), "
                f"got {wave.shape[-1]}"
            )
        spec = self.logmel(wave)  # (B, n_mels, frames)
        # (B, n_mels, frames, 1) is PANNs' bn0 layout (its (B, 1, T, F) transposed on 1 and 3).
        h = self.bn0(spec.unsqueeze(-1)).squeeze(-1)
        h = self.spec_augment(h)
        h = h.transpose(1, 2).unsqueeze(1)  # (B, 1, frames, n_mels), PANNs' conv layout
        for block in self.blocks:
            h = self.dropout(block(h))
        h = h.mean(dim=3).transpose(1, 2)  # (B, S, widths[-1])
        if self.fc1 is not None:
            h = self.dropout(F.relu(self.fc1(h)))
        return h


def _panns_to_dcat(key: str) -> str | None:
    """Our parameter name for a PANNs one, or None when it has no counterpart."""
    head, _, rest = key.partition(".")
    if head in ("bn0", "fc1"):
        return key
    if head.startswith("conv_block") and head[len("conv_block") :].isdigit() and rest:
        return f"blocks.{int(head[len('conv_block') :]) - 1}.{rest}"
    return None


def _read_state_dict(path: Path) -> Mapping[str, Tensor]:
    state = load_torch_file(path)
    # PANNs' released files hold {"model": state_dict, ...}; accept a bare state dict too.
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        state = state["model"]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise DcatError(
            f"{path} holds no PANNs state dict (expected {{'model': state_dict}} or a "
            f"state dict of tensors)"
        )
    return state


def _match_panns(
    state: Mapping[str, Tensor], own: Mapping[str, Tensor]
) -> tuple[dict[str, list[str]], list[str], dict[str, Tensor]]:
    """Sort a PANNs state dict's tensors into those to load and those to report.

    Args:
        state: The checkpoint's name → tensor.
        own: The encoder's state dict, name → tensor.

    Returns:
        The report of :func:`load_panns_weights` with ``unexpected``, ``shape_mismatch`` and
        ``ignored`` filled (``loaded`` and ``missing`` still empty), one line per shape
        mismatch (``"name (shape) vs target (shape)"``), and our name → tensor to load.
    """
    report: dict[str, list[str]] = {
        "loaded": [],
        "missing": [],
        "unexpected": [],
        "shape_mismatch": [],
        "ignored": [],
    }
    details: list[str] = []
    to_load: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith(_PANNS_IGNORED):
            report["ignored"].append(key)
            continue
        target = _panns_to_dcat(key)
        if target is None or target not in own:
            report["unexpected"].append(key)
        elif own[target].shape != value.shape:
            report["shape_mismatch"].append(key)
            details.append(f"{key} {tuple(value.shape)} vs {target} {tuple(own[target].shape)}")
        else:
            to_load[target] = value
    return report, details, to_load


def _rescale_bn0(to_load: dict[str, Tensor], bn_eps: float) -> None:
    """Convert ``bn0``'s running statistics in ``to_load`` from decibels to natural-log units.

    Args:
        to_load: Our name → tensor; ``bn0.running_mean`` and ``bn0.running_var`` (``(n_mels,)``)
            are replaced when present.
        bn_eps: ``bn0``'s ε.
    """
    # bn0 sees x_ln = x_dB / c. Dividing the mean by c and choosing the variance so that
    # sqrt(var' + ε) = sqrt(var + ε) / c makes bn0(x_ln) equal PANNs' bn0(x_dB) exactly.
    if "bn0.running_mean" in to_load:
        to_load["bn0.running_mean"] = to_load["bn0.running_mean"] / _DB_PER_NEPER
    if "bn0.running_var" in to_load:
        var = (to_load["bn0.running_var"] + bn_eps) / _DB_PER_NEPER**2 - bn_eps
        to_load["bn0.running_var"] = var.clamp_min(0.0)


def load_panns_weights(
    encoder: AudioEncoder, path: str | Path, *, rescale_bn0: bool = True
) -> dict[str, list[str]]:
    """Load a local PANNs CNN14 checkpoint into an :class:`AudioEncoder`, leniently.

    Names map as ``bn0.*`` → ``bn0.*``, ``conv_block{i}.*`` → ``blocks.{i-1}.*``, ``fc1.*`` →
    ``fc1.*``; ``spectrogram_extractor.*``, ``logmel_extractor.*`` and ``fc_audioset.*`` are
    ignored (the front end is recomputed; the classifier is not used). A ``module.`` prefix
    (DataParallel) is dropped. Tensors whose shape differs are skipped.

    With ``rescale_bn0`` (default), ``bn0``'s running mean is divided by ``c = 10 / ln 10`` and
    its running variance becomes ``(var + ε) / c² - ε`` (ε is BN's), because PANNs normalises
    decibels and :class:`LogMel` gives natural logs: in eval mode ``bn0`` then produces exactly
    PANNs' normalised spectrogram, which is what the pretrained convolutions expect.

    Args:
        encoder: The encoder to load into (changed in place).
        path: Local checkpoint file, ``{"model": state_dict}`` or a bare state dict.
        rescale_bn0: Convert ``bn0``'s statistics from decibels to natural-log units.

    Returns:
        The report, also stored as ``encoder.load_report``: ``loaded`` (our names),
        ``missing`` (our names that kept their initialisation, shape mismatches included),
        ``unexpected`` (checkpoint names with no counterpart), ``shape_mismatch`` (checkpoint
        names with a counterpart of another shape) and ``ignored`` (checkpoint names skipped
        on purpose). One warning with the counts is emitted when any of ``missing``,
        ``unexpected`` or ``shape_mismatch`` is non-empty.

    Raises:
        DcatError: When the file holds no state dict.
    """
    path = Path(path)
    state = _read_state_dict(path)
    own = encoder.state_dict()
    report, details, to_load = _match_panns(state, own)
    if rescale_bn0:
        _rescale_bn0(to_load, encoder.bn0.eps)
    encoder.load_state_dict(to_load, strict=False)
    report["loaded"] = sorted(to_load)
    report["missing"] = sorted(set(own) - set(to_load))
    encoder.load_report = report
    if report["missing"] or report["unexpected"] or report["shape_mismatch"]:
        shown = "; ".join(details[:3]) + (" ..." if len(details) > 3 else "")
        warnings.warn(
            f"PANNs weights {path}: loaded {len(report['loaded'])} tensors; "
            f"{len(report['missing'])} missing (kept their initialisation), "
            f"{len(report['unexpected'])} unexpected, "
            f"{len(report['shape_mismatch'])} shape mismatch"
            + (f" ({shown})" if shown else "")
            + f", {len(report['ignored'])} ignored; see encoder.load_report",
            UserWarning,
            stacklevel=2,
        )
    return report
