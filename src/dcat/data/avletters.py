"""AVLetters (Matthews et al., IEEE TPAMI 2002): lip video + audio MFCC, letters A–Z spoken by
10 speakers, 3 repetitions each (780 utterances).

Files as released: ``Lips/<L><r>_<Speaker>-lips.mat`` (``vid``, uint8 ``(4800, T)``, 60 × 80
greyscale mouth region stored column-major, 25 fps) and ``Audio/mfcc/Clean/<L><r>_<Speaker>.mfcc``
(HTK parameter file, 26 coefficients at 50 Hz: 12 MFCC + energy and their deltas). Both streams
cover the same utterance without timestamps (MFCC frames ≈ 2 × video frames − 1), so each is
resampled to a fixed number of steps by relative position.
"""

from __future__ import annotations

import re
import string
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import torch
import torch.nn.functional as F

from dcat.data.assemble import Recording, Trials, assemble
from dcat.data.paired import PairedDataset, StreamInfo
from dcat.data.registry import register_dataset
from dcat.errors import DcatError
from dcat.io.resample import resample_linear

__all__ = [
    "AVLETTERS_CLASSES",
    "load_avletters",
    "read_htk",
    "read_lips",
    "speaker_ids",
]

AVLETTERS_CLASSES = list(string.ascii_uppercase)
VIDEO_FPS = 25.0
LIPS_HEIGHT, LIPS_WIDTH = 60, 80
MFCC_COEFFICIENTS = 26
# HTK's MFCC_E_D order: 12 cepstra, log energy, then their deltas.
_CEPSTRA = [f"mfcc_{i}" for i in range(1, 13)]
MFCC_CHANNELS = [*_CEPSTRA, "energy", *(f"d_{c}" for c in _CEPSTRA), "d_energy"]

_HTK_HEADER = struct.Struct(">iihh")
_HTK_COMPRESSED = 0o2000
_LIPS_NAME = re.compile(r"^([A-Z])(\d+)_([A-Za-z]+)-lips\.mat$")
_MFCC_NAME = re.compile(r"^([A-Z])(\d+)_([A-Za-z]+)\.mfcc$")


def read_htk(path: str | Path) -> tuple[np.ndarray, float]:
    """Read an HTK parameter file (big-endian, uncompressed).

    Layout: a 12-byte header ``>iihh`` (number of frames, frame period in 100 ns units, bytes per
    frame, parameter kind), then frames × (bytes per frame / 4) ``>f4`` values.

    Args:
        path: The ``.mfcc`` (or other HTK feature) file.

    Returns:
        ``(frames, values)``: ``(nSamples, sampSize // 4)`` float32, and the frame period in
        seconds (0.02 for AVLetters).

    Raises:
        DcatError: A short or malformed header, a compressed parameter kind, a body whose size
            does not match the header, or NaN/Inf values; the message names the file.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < _HTK_HEADER.size:
        raise DcatError(
            f"{path}: {len(data)} bytes, shorter than the {_HTK_HEADER.size}-byte HTK header"
        )
    n_samples, period, sample_size, kind = _HTK_HEADER.unpack_from(data)
    if n_samples <= 0:
        raise DcatError(f"{path}: HTK header has nSamples = {n_samples}, expected > 0")
    if period <= 0:
        raise DcatError(f"{path}: HTK header has sampPeriod = {period}, expected > 0")
    if sample_size <= 0 or sample_size % 4:
        raise DcatError(
            f"{path}: HTK header has sampSize = {sample_size} bytes, expected a positive "
            "multiple of 4 (float32 values)"
        )
    if kind & _HTK_COMPRESSED:
        # Compressed files store int16 values plus scale/offset vectors; none are in AVLetters.
        raise DcatError(f"{path}: compressed HTK parameter kind {kind} (flag _C) is unsupported")
    expected = n_samples * sample_size
    found = len(data) - _HTK_HEADER.size
    if found != expected:
        raise DcatError(
            f"{path}: HTK body has {found} bytes, expected {expected} "
            f"({n_samples} frames × {sample_size} bytes); the file is truncated or has "
            "trailing bytes"
        )
    frames = np.frombuffer(data, dtype=">f4", offset=_HTK_HEADER.size)
    frames = frames.reshape(n_samples, sample_size // 4).astype(np.float32)
    if not np.isfinite(frames).all():
        bad = int(np.argwhere(~np.isfinite(frames))[0][0])
        raise DcatError(f"{path}: HTK values contain NaN or Inf (first in frame {bad})")
    return frames, period * 1e-7


def read_lips(path: str | Path) -> np.ndarray:
    """Read one AVLetters lip video.

    The ``vid`` variable holds one column per frame; MATLAB stored each 60 × 80 image
    column-major, so frame ``t`` is ``vid[:, t].reshape(60, 80, order="F")``.

    Args:
        path: The ``-lips.mat`` file.

    Returns:
        ``(T, 60, 80)`` uint8 greyscale frames.

    Raises:
        DcatError: An unreadable file, no ``vid`` variable, or ``vid`` not uint8 ``(4800, T)``.
    """
    path = Path(path)
    try:
        contents = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for corrupt or truncated files
        raise DcatError(f"{path}: cannot read as a .mat file ({err})") from err
    if "vid" not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise DcatError(f"{path}: variable 'vid' not found (has {found})")
    vid = np.asarray(contents["vid"])
    pixels = LIPS_HEIGHT * LIPS_WIDTH
    if vid.ndim != 2 or vid.shape[0] != pixels or vid.shape[1] < 1:
        raise DcatError(f"{path}: vid must have shape ({pixels}, T ≥ 1), got {vid.shape}")
    if vid.dtype != np.uint8:
        raise DcatError(f"{path}: vid must be uint8 greyscale, got {vid.dtype}")
    video = vid.reshape(LIPS_HEIGHT, LIPS_WIDTH, vid.shape[1], order="F")
    return np.ascontiguousarray(np.moveaxis(video, 2, 0))


def _parse_names(folder: Path, pattern: re.Pattern) -> dict[str, Path]:
    """Utterance stem (``"A1_Anya"``) → file, for the files in ``folder`` matching ``pattern``."""
    files = {}
    for path in folder.iterdir():
        match = pattern.match(path.name)
        if match:
            letter, repetition, speaker = match.groups()
            files[f"{letter}{repetition}_{speaker}"] = path
    return files


def _speaker(stem: str) -> str:
    return stem.split("_", 1)[1]


def _folders(root: Path) -> tuple[Path, Path]:
    lips_dir, mfcc_dir = root / "Lips", root / "Audio" / "mfcc" / "Clean"
    for folder in (lips_dir, mfcc_dir):
        if not folder.is_dir():
            raise DcatError(
                f"AVLetters folder {folder} not found (expected Lips/ and Audio/mfcc/Clean/)"
            )
    return lips_dir, mfcc_dir


def speaker_ids(root: str | Path) -> dict[str, int]:
    """Speaker name → subject id, 1, 2, … in sorted-name order of the speakers under ``root``.

    For the full release: Anya 1, Bill 2, Faye 3, John 4, Kate 5, Nicola 6, Stephen 7, Steve 8,
    Verity 9, Yi 10. The ids do not depend on the ``speakers`` filter of :func:`load_avletters`.

    Args:
        root: Folder with ``Lips/`` and ``Audio/mfcc/Clean/``.

    Returns:
        The mapping, in id order.
    """
    lips_dir, mfcc_dir = _folders(Path(root))
    return _number_speakers(
        set(_parse_names(lips_dir, _LIPS_NAME)) | set(_parse_names(mfcc_dir, _MFCC_NAME))
    )


def _number_speakers(stems: Iterable[str]) -> dict[str, int]:
    names = sorted({_speaker(stem) for stem in stems})
    return {name: i for i, name in enumerate(names, start=1)}


def _resample_frames(video: np.ndarray, frames: int) -> np.ndarray:
    """``(T, H, W)`` → ``(frames, H, W)`` float32 by linear interpolation on relative position,
    first and last frames kept (as :func:`resample_linear` does for series)."""
    length = video.shape[0]
    if length == 1:
        return np.repeat(video.astype(np.float32), frames, axis=0)
    position = np.linspace(0.0, length - 1, frames)
    low = np.minimum(np.floor(position).astype(np.int64), length - 2)
    weight = (position - low).astype(np.float32)[:, None, None]
    # One gather per neighbour instead of np.interp per pixel (4800 calls per utterance).
    video = video.astype(np.float32)
    return video[low] * (1 - weight) + video[low + 1] * weight


def _lips_features(video: np.ndarray, frames: int, size: tuple[int, int]) -> np.ndarray:
    """``(T, 60, 80)`` uint8 → ``(frames, 1, *size)`` float32 in ``[0, 1]``."""
    resampled = torch.from_numpy(_resample_frames(video, frames) / 255.0)[:, None]
    if tuple(resampled.shape[-2:]) != size:
        resampled = F.interpolate(resampled, size=size, mode="area")
    # Area averaging can round a hair past 1.0 in float32; the contract is [0, 1].
    return resampled.clamp_(0.0, 1.0).numpy()


@register_dataset("avletters", summary="AVLetters: lip video + MFCC audio, 26 letters, 10 speakers")
def load_avletters(
    root: str | Path,
    *,
    frames: int = 24,
    mfcc_steps: int = 48,
    lips_size: tuple[int, int] = (30, 40),
    speakers: list[str] | None = None,
    max_duration_mismatch: float = 0.35,
) -> PairedDataset:
    """Read AVLetters into a :class:`PairedDataset` with modalities ``lips`` and ``mfcc``.

    Lip files and MFCC files are paired by utterance name. Utterances are ordered by speaker id,
    then letter, then repetition.

    Args:
        root: Folder with ``Lips/`` and ``Audio/mfcc/Clean/``.
        frames: Video frames per utterance after resampling (the release has 12–40 at 25 fps).
        mfcc_steps: MFCC steps per utterance after resampling (the release has 23–79 at 50 Hz).
        lips_size: ``(H, W)`` of each frame after area resizing from 60 × 80.
        speakers: Keep only these speakers, by name (e.g. ``["Anya", "Bill"]``); all by default.
        max_duration_mismatch: Largest accepted ``|video s − MFCC s| / max(video s, MFCC s)``
            for one utterance. The default 0.35 admits the release's one defect, ``M1_Verity``
            (0.92 s of video, 0.62 s of MFCC: audio cut off while still voiced, 33 %); every
            other utterance is within 12 %, 777 of 780 within 5 %. Lower it to be strict.

    Returns:
        ``lips`` ``(N, frames, 1, H, W)`` float32 in ``[0, 1]`` and ``mfcc``
        ``(N, 26, mfcc_steps)`` float32; labels 0–25 for A–Z; subjects from
        :func:`speaker_ids` (1–10 in sorted-name order), ``subject_names`` the speakers' names
        as in the file names (``{1: "Anya", …, 10: "Yi"}``: split configs name speakers so);
        recordings the utterance stems (``"A1_Anya"``).

    Raises:
        DcatError: A missing folder, an unknown speaker, a file without its pair, an unreadable
            file, or an utterance whose two streams' durations disagree (all named).
    """
    root = Path(root)
    if frames < 1 or mfcc_steps < 1:
        raise DcatError(f"frames and mfcc_steps must be positive, got {frames}, {mfcc_steps}")
    if len(lips_size) != 2 or min(lips_size) < 1:
        raise DcatError(f"lips_size must be two positive ints (H, W), got {lips_size}")
    lips_size = (int(lips_size[0]), int(lips_size[1]))
    lips_dir, mfcc_dir = _folders(root)
    lips_files = _parse_names(lips_dir, _LIPS_NAME)
    mfcc_files = _parse_names(mfcc_dir, _MFCC_NAME)
    _check_pairs(lips_files, mfcc_files, lips_dir, mfcc_dir)
    ids = _number_speakers(lips_files)
    if speakers is not None:
        unknown = sorted(set(speakers) - set(ids))
        if unknown:
            raise DcatError(f"unknown AVLetters speakers {unknown}; {root} has {list(ids)}")
    keep = set(ids) if speakers is None else set(speakers)

    def order(stem: str) -> tuple[int, str, int]:
        utterance, speaker = stem.split("_", 1)
        return ids[speaker], utterance[0], int(utterance[1:])

    stems = sorted((s for s in lips_files if _speaker(s) in keep), key=order)
    options = _Options(frames, mfcc_steps, lips_size, max_duration_mismatch)
    recordings = (
        _utterance(stem, lips_files[stem], mfcc_files[stem], ids[_speaker(stem)], options)
        for stem in stems
    )
    return assemble(
        recordings,
        AVLETTERS_CLASSES,
        name="avletters",
        subject_names={i: speaker for speaker, i in ids.items() if speaker in keep},
        streams=lambda read: _streams(frames, mfcc_steps, read[-1].rates["mfcc"]),
        empty=f"no AVLetters utterances (<L><r>_<Speaker>-lips.mat) found in {lips_dir}",
    )


def _check_pairs(
    lips: dict[str, Path], mfcc: dict[str, Path], lips_dir: Path, mfcc_dir: Path
) -> None:
    """Every utterance has both files (the first one missing its pair is named)."""
    no_mfcc = sorted(set(lips) - set(mfcc))
    if no_mfcc:
        stem = no_mfcc[0]
        raise DcatError(f"{mfcc_dir / (stem + '.mfcc')}: missing MFCC file for utterance {stem}")
    no_lips = sorted(set(mfcc) - set(lips))
    if no_lips:
        stem = no_lips[0]
        raise DcatError(
            f"{lips_dir / (stem + '-lips.mat')}: missing lips file for utterance {stem}"
        )


@dataclass(frozen=True)
class _Options:
    frames: int
    mfcc_steps: int
    lips_size: tuple[int, int]
    max_duration_mismatch: float


def _utterance(stem: str, lips: Path, mfcc: Path, subject: int, options: _Options) -> Recording:
    """One utterance: its lips video and MFCC, checked to last as long as each other."""
    video = read_lips(lips)
    coefficients, period = read_htk(mfcc)
    if coefficients.shape[1] != MFCC_COEFFICIENTS:
        raise DcatError(
            f"{mfcc}: {coefficients.shape[1]} values per frame, expected "
            f"{MFCC_COEFFICIENTS} (12 MFCC + energy and their deltas)"
        )
    video_s, mfcc_s = video.shape[0] / VIDEO_FPS, coefficients.shape[0] * period
    mismatch = abs(video_s - mfcc_s) / max(video_s, mfcc_s)
    if mismatch > options.max_duration_mismatch:
        raise DcatError(
            f"utterance {stem}: video lasts {video_s:.2f} s ({video.shape[0]} frames at "
            f"{VIDEO_FPS:g} fps) but MFCC {mfcc_s:.2f} s ({coefficients.shape[0]} frames), "
            f"a {mismatch:.0%} mismatch (limit {options.max_duration_mismatch:.0%})"
        )
    return Recording(
        {
            "lips": _lips_features(video, options.frames, options.lips_size),
            "mfcc": resample_linear(coefficients.T, options.mfcc_steps),
        },
        AVLETTERS_CLASSES.index(stem[0]),
        subject,
        stem,
        seconds={"lips": video_s, "mfcc": mfcc_s},
        rates={"mfcc": 1 / period},
    )


def _streams(frames: int, mfcc_steps: int, mfcc_hz: float) -> dict[str, StreamInfo | Trials]:
    """The lips video's and the MFCC's streams (the MFCC's rate as its files give it)."""
    return {
        "lips": Trials(
            frames, ["gray"], f"{VIDEO_FPS:g} fps", native_hz=VIDEO_FPS, fields={"kind": "video"}
        ),
        "mfcc": Trials(mfcc_steps, MFCC_CHANNELS, f"{mfcc_hz:g} frames/s", native_hz=mfcc_hz),
    }
