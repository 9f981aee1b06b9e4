"""Run exported single-sensor models on raw recordings: sliding windows → class probabilities.

Needs only numpy and onnxruntime for ONNX models (torch is never imported on that path);
``model.pt2`` exports run with torch when no ONNX file is there. Audio recordings need
soundfile and video recordings PyAV.

Recordings (one per modality):

* ``.csv`` / ``.txt``: one row per time step, one column per channel; an optional header names
  the columns. A time column (``time``, ``timestamp``, ``t``, ``time_s``, ``seconds``, or the one
  given) holds seconds; without one the rate is ``rate`` (default: the rate of the recordings
  the model was trained from, its card's ``recording_rate_hz``; refused when the card records
  none). With a header and a model that records channel names, columns are matched by name, in
  any order.
* ``.npy``: ``(T, C)`` (or ``(T,)`` for one channel) at ``rate`` (default as for a CSV).
* ``.wav`` / ``.flac`` / ``.ogg`` (soundfile), ``.mp3`` / ``.m4a`` / ``.aac`` (PyAV): audio
  models; averaged to mono for a one-channel model, else the channels must match.
* ``.mp4`` / ``.avi`` / ``.mkv`` / ``.mov`` / ``.webm``: video models; decoded at the model's
  frame rate and size, frame times from the container.
* a folder of PNG/JPEG frames, or a ``(T, H, W[, C])`` ``.npy`` (depth, thermal): video models;
  frames at ``rate`` (default as for a CSV), picked onto the model's frame grid, array values
  mapped to 8 bits with the model's ``value_range`` as in training.

Every recording is brought onto the model's grid (``rate_hz``): linearly interpolated (series,
audio) or frames picked (video). The card's ``rate_hz`` is the rate *after* any resampling in
training (e.g. trials resampled to a fixed number of steps), so a raw recording at the
recordings' own rate is expected. A recording whose rate is more than ``rate_tolerance`` away
from both the model's recordings and its grid is refused unless ``resample`` is set (a wrong
``--rate`` is the usual cause); when the card records no recording rate, the rate given or
measured is taken as it is. The stored normalisation is
applied, windows of the model's length are cut every ``stride_s`` seconds, and each window gets
the model's class probabilities (softmax of the logits).

With several models (one per modality), windows are aligned on time, from the latest start of
the recordings, and the probabilities of the models whose recording is present are averaged; a
model without a recording drops out.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, cast

import numpy as np

from dcat.errors import DcatError
from dcat.io.card import ModelCard
from dcat.io.normalization import center_positions, normalize
from dcat.io.resample import resample_to_grid
from dcat.io.table import CsvRows, TableError, load_npy, non_finite, read_rows
from dcat.io.windows import window_starts

__all__ = [
    "DeployedModel",
    "PredictError",
    "Recording",
    "WindowPrediction",
    "describe",
    "format_predictions",
    "predict",
    "read_recording",
    "window_inputs",
]

TIME_COLUMNS = ("time", "timestamp", "t", "time_s", "seconds")
_AUDIO = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac")
_VIDEO = (".mp4", ".avi", ".mkv", ".mov", ".webm")


class PredictError(DcatError):
    """A model or recording that cannot be used as given (the message says why)."""


class DeployedModel:
    """One exported model folder (``metadata.json`` + ``model.onnx`` or ``model.pt2``).

    Args:
        folder: The folder :func:`dcat.deploy.export.export_model` wrote.
        threads: Threads of the ONNX Runtime session (``None``: its default).

    Attributes:
        card: The model's :class:`~dcat.io.card.ModelCard`.
        backend: ``"onnxruntime"`` or ``"torch"``.
    """

    def __init__(self, folder: str | Path, *, threads: int | None = None) -> None:
        folder = Path(folder)
        if folder.is_file():
            folder = folder.parent
        meta = folder / "metadata.json"
        if not meta.is_file():
            raise PredictError(f"{folder}: not an exported model folder (no metadata.json)")
        self.folder = folder
        self.card = ModelCard.load(meta)
        self.name = f"{self.card.modality}:{folder}"
        if (folder / "model.onnx").is_file():
            try:
                import onnxruntime as ort
            except ImportError:
                raise PredictError(
                    "running an ONNX model needs onnxruntime: pip install onnxruntime"
                ) from None
            options = ort.SessionOptions()
            if threads is not None:
                options.intra_op_num_threads = threads
            try:
                self._session = ort.InferenceSession(
                    str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
                )
            except Exception as err:  # onnxruntime raises its own error types
                raise PredictError(f"{folder / 'model.onnx'}: cannot load: {err}") from None
            self.backend = "onnxruntime"
        elif (folder / "model.pt2").is_file():
            # torch is an optional back end here, loaded by name only when a model needs it:
            # the ONNX path (and the import-linter contract) must stay torch-free
            self._torch = importlib.import_module("torch")
            self._program = self._torch.export.load(str(folder / "model.pt2")).module()
            self.backend = "torch"
        else:
            raise PredictError(f"{folder}: holds neither model.onnx nor model.pt2")

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Logits ``(B, K)`` of normalised inputs ``(B, *input_shape)``."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.backend == "onnxruntime":
            return self._session.run(["logits"], {"input": batch})[0]
        with self._torch.no_grad():
            return self._program(self._torch.from_numpy(batch)).numpy()

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, K)`` (softmax of :meth:`logits`)."""
        logits = self.logits(batch).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class Recording:
    """A recording on the model's time grid.

    Attributes:
        values: Time-major steps: ``(T, C)`` for series, ``(F, C, H, W)`` frames for video.
        rate_hz: Steps per second (the model's).
        start_s: Time of the first step, in seconds (0 without time stamps).
        source: Where it came from.
    """

    values: np.ndarray
    rate_hz: float
    start_s: float
    source: str

    @property
    def duration_s(self) -> float:
        return len(self.values) / self.rate_hz


def _model_rate(card: ModelCard, given: float | None, source: str) -> float:
    if card.rate_hz is not None:
        return card.rate_hz
    if given is None:
        raise PredictError(
            f"{source}: the {card.modality} model records no sampling rate; pass --rate with the "
            "rate the model was trained at"
        )
    return given


def _source_rate(card: ModelCard, given: float | None, source: str) -> float:
    """Rate of a recording that carries no time stamps: ``given``, else the rate of the
    recordings the model was trained from; never the model's grid, which resampling in training
    may have moved away from any recording's rate."""
    if given is not None:
        return given
    if card.recording_rate_hz is not None:
        return card.recording_rate_hz
    raise PredictError(
        f"{source}: holds no time stamps and the {card.modality} model's card records no "
        f"recording rate (its {card.rate_hz:.6g} Hz is the rate after resampling); pass --rate "
        "with this recording's rate in Hz"
    )


def _check_rate(
    rate: float, card: ModelCard, model_rate: float, tolerance: float, resample: bool, where: str
) -> None:
    """Refuse a ``rate`` far from both the model's recordings and its grid (``model_rate``),
    unless ``resample``: it is more likely a wrong ``--rate`` than a recording to stretch.

    A card that records no recording rate (trials resampled from recordings of unknown or
    mixed rates) has nothing to compare with: any raw recording differs from its grid, so the
    rate given or measured is taken as it is."""
    if not math.isfinite(rate) or rate <= 0:
        raise PredictError(f"{where}: sampling rate must be a positive number of Hz, got {rate}")
    native = card.recording_rate_hz
    if resample or native is None:
        return
    if any(abs(rate / r - 1) <= tolerance for r in (native, model_rate)):
        return
    if abs(native / model_rate - 1) <= tolerance:
        shown = f"the model's {model_rate:.6g} Hz"
    else:
        shown = f"the model's recordings ({native:.6g} Hz) and its grid ({model_rate:.6g} Hz)"
    raise PredictError(
        f"{where}: sampled at {rate:.6g} Hz, far from {shown} (tolerance {tolerance:.0%}); "
        "resample the recording or pass --resample (time stamps must be in seconds)"
    )


def _read_csv(path: Path) -> tuple[CsvRows, np.ndarray]:
    """The rows of a recording CSV (:func:`~dcat.io.table.read_rows`) and all its numbers.

    Rows are numbered as predict always did: non-blank rows from 1 at the file's first row (the
    header, when there is one). Returns the rows and ``(T, K)`` float64 of every column.
    """
    try:
        rows = read_rows(path, numbering="line", count_skipped=False)
        return rows, rows.numeric(finite=False)
    except TableError as err:
        if err.kind == "read":
            raise PredictError(f"{path}: cannot read: {err.__cause__}") from None
        if err.kind == "fields":
            raise PredictError(
                f"{path}: row {err.row} has {len(err.cells)} columns, expected {err.expected}"
            ) from None
        if err.kind == "number":
            name = err.column if isinstance(err.column, str) else f"column {err.column}"
            raise PredictError(
                f"{path}: row {err.row}, {name}: {err.value!r} is not a number"
            ) from None
        raise PredictError(str(err)) from None


def _select_channels(
    path: Path, header: list[str] | None, data: np.ndarray, card: ModelCard, time_column: str | None
) -> tuple[np.ndarray | None, np.ndarray, list[str]]:
    """Split ``data`` into time stamps (or ``None``) and the model's channels, in its order."""
    names = header or [f"column {i + 1}" for i in range(data.shape[1])]
    time_index = None
    if time_column is not None:
        if header is None or time_column not in header:
            raise PredictError(f"{path}: no column named {time_column!r} (columns: {names})")
        time_index = header.index(time_column)
    elif header is not None:
        found = [i for i, n in enumerate(header) if n.lower() in TIME_COLUMNS]
        time_index = found[0] if found else None
    rest = [i for i in range(data.shape[1]) if i != time_index]
    if header is not None and card.channels and set(card.channels) <= set(header):
        rest = [header.index(c) for c in card.channels]
    if len(rest) != card.num_channels:
        expected = f" ({', '.join(card.channels)})" if card.channels else ""
        raise PredictError(
            f"{path}: has {len(rest)} channel column(s) {[names[i] for i in rest]}, the "
            f"{card.modality} model expects {card.num_channels}{expected}"
        )
    times = data[:, time_index] if time_index is not None else None
    return times, data[:, rest], [names[i] for i in rest]


def _refuse_non_finite(
    path: Path, values: np.ndarray, names: Sequence[str], rows: Sequence[int] | None
) -> None:
    """Refuse NaN/Inf in ``(T, C)`` steps; ``rows``: the CSV row of each step (``None``: name
    the step instead)."""
    found = non_finite(values)
    if found is not None:
        (step, column), count = found
        where = f"row {rows[step]}" if rows is not None else f"step {step}"
        raise PredictError(
            f"{path}: NaN or Inf in {where}, channel {names[column]!r} "
            f"({count} bad values in all); clean or interpolate the recording first"
        )


def read_recording(
    path: str | Path,
    card: ModelCard,
    *,
    rate: float | None = None,
    time_column: str | None = None,
    resample: bool = False,
    rate_tolerance: float = 0.02,
) -> Recording:
    """Read one recording for a model and bring it onto the model's time grid.

    Args:
        path: A CSV, ``.npy``, audio or video file (see the module docstring).
        card: The model's card (channels, rate, window).
        rate: Rate of a recording without time stamps (default: the card's
            ``recording_rate_hz``, the rate of the recordings the model was trained from).
        time_column: Name of the CSV's time column (seconds), if not a usual name.
        resample: Accept a rate far from both the model's recordings and its grid.
        rate_tolerance: Largest relative distance from either rate accepted without
            ``resample``.

    Returns:
        :class:`Recording` at the model's rate, not yet normalised.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PredictError: Unreadable file, wrong channel count, NaN or Inf, no rate for a file
            without time stamps, a rate far from the model's, non-increasing time stamps, or
            shorter than one window.
    """
    path = Path(path)
    if not path.is_file() and not path.is_dir():
        raise FileNotFoundError(f"{path}: no such recording")
    suffix = path.suffix.lower()
    model_rate = _model_rate(card, rate, str(path))
    start = 0.0
    if card.is_video:
        values = _read_frames(path, card, model_rate, rate, rate_tolerance, resample)
    elif path.is_dir():
        raise PredictError(
            f"{path}: a folder (of image frames?), but the {card.modality} model takes a "
            "series or audio recording file"
        )
    elif suffix in _AUDIO:
        audio, file_rate = _read_audio(path, card)
        values = _at_model_rate(path, audio, file_rate, card, model_rate, rate_tolerance, resample)
    elif suffix in (".csv", ".txt", ".npy"):
        values, start = _read_series(
            path, card, model_rate, rate, time_column, rate_tolerance, resample
        )
    else:
        raise PredictError(
            f"{path}: unsupported recording type {suffix or '(no extension)'}; use .csv, .npy, "
            f"{', '.join(_AUDIO)} or {', '.join(_VIDEO)}"
        )
    _refuse_short(path, values, card, model_rate)
    return Recording(values, model_rate, start, str(path))


def _read_series(
    path: Path,
    card: ModelCard,
    model_rate: float,
    rate: float | None,
    time_column: str | None,
    tolerance: float,
    resample: bool,
) -> tuple[np.ndarray, float]:
    """A ``.csv``, ``.txt`` or ``.npy`` series on the model's grid, and its start in seconds.

    Args:
        path: The recording.
        card: The model's card (channels, rates).
        model_rate: The model's grid (Hz).
        rate: Rate of a recording without time stamps (default: the card's recording rate).
        time_column: Name of the CSV's time column, if not a usual name.
        tolerance: Largest relative distance from the model's rates accepted without
            ``resample``.
        resample: Accept any rate.

    Returns:
        Steps ``(T, C)`` at ``model_rate`` and the first time stamp (``0.0`` without any).

    Raises:
        PredictError: Unreadable file, wrong channels, NaN or Inf, no rate, a rate far from
            the model's, or non-increasing time stamps.
    """
    rows: list[int] | None = None
    if path.suffix.lower() == ".npy":
        times, values = None, _read_npy(path, card)
        names: Sequence[str | int] = list(card.channels or range(card.num_channels))
    else:
        table, data = _read_csv(path)
        times, values, names = _select_channels(path, table.header, data, card, time_column)
        rows = table.row_numbers
    _refuse_non_finite(path, values, [str(n) for n in names], rows)
    if times is None or rows is None:
        given = _source_rate(card, rate, str(path))
        return _at_model_rate(path, values, given, card, model_rate, tolerance, resample), 0.0
    values = _stamped_to_grid(path, times, values, rows, card, model_rate, tolerance, resample)
    return values, float(times[0])


def _stamped_to_grid(
    path: Path,
    times: np.ndarray,
    values: np.ndarray,
    rows: Sequence[int],
    card: ModelCard,
    model_rate: float,
    tolerance: float,
    resample: bool,
) -> np.ndarray:
    """Steps ``(T, C)`` at time stamps ``times`` (seconds) → the model's rate, once the stamps
    increase and their median rate is checked (:func:`_check_rate`); ``rows``: the CSV row of
    each step, to name the first bad stamp."""
    if len(times) < 2 or not np.all(np.diff(times) > 0):
        bad = rows[int(np.argmax(np.diff(times) <= 0)) + 1] if len(times) > 1 else 1
        raise PredictError(
            f"{path}: time stamps must increase strictly (first problem at row {bad})"
        )
    # the median step: a few jittered or dropped samples do not move it
    measured = 1.0 / float(np.median(np.diff(times)))
    _check_rate(measured, card, model_rate, tolerance, resample, str(path))
    return resample_to_grid(times, values, model_rate)


def _refuse_short(path: Path, values: np.ndarray, card: ModelCard, model_rate: float) -> None:
    """Refuse a recording (at ``model_rate``) shorter than one window of the model."""
    window = card.window_samples
    if len(values) < window:
        seconds = f" ({len(values) / model_rate:.3g} s at {model_rate:.4g} Hz)"
        raise PredictError(
            f"{path}: too short: {len(values)} steps{seconds}, one window of the "
            f"{card.modality} model needs {window} ({window / model_rate:.3g} s)"
        )


def _at_model_rate(
    path: Path,
    values: np.ndarray,
    rate: float,
    card: ModelCard,
    model_rate: float,
    tolerance: float,
    resample: bool,
) -> np.ndarray:
    """Steps ``(T, C)`` sampled at a fixed ``rate`` → the model's rate (checked first)."""
    _check_rate(rate, card, model_rate, tolerance, resample, str(path))
    if rate == model_rate:
        return values
    return resample_to_grid(np.arange(len(values)) / rate, values, model_rate)


class _FrameOptions(TypedDict):
    """The options every frame reader takes: the model's frame size, rate and colour."""

    size: tuple[int, int]
    fps: float
    grayscale: bool


def _read_frames(
    path: Path,
    card: ModelCard,
    model_rate: float,
    rate: float | None,
    tolerance: float,
    resample: bool,
) -> np.ndarray:
    """Frames ``(F, C, H, W)`` in ``[0, 1]`` at the model's frame rate and size, from a video
    file, a folder of PNG/JPEG frames or a ``(T, H, W[, C])`` ``.npy`` (at ``rate``, default
    the card's recording rate), picked and scaled as in training (:mod:`dcat.io.frames`)."""
    _frames, channels, height, width = card.input_shape
    options: _FrameOptions = {
        "size": (height, width),
        "fps": model_rate,
        "grayscale": channels == 1,
    }
    try:
        if path.suffix.lower() in _VIDEO:
            from dcat.io.media import decode_video

            decoded = decode_video(path, **options)
        elif path.is_dir() or path.suffix.lower() == ".npy":
            from dcat.io.frames import read_frame_array, read_image_sequence

            source_rate = _source_rate(card, rate, str(path))
            _check_rate(source_rate, card, model_rate, tolerance, resample, str(path))
            if path.is_dir():
                decoded = read_image_sequence(path, rate_hz=source_rate, **options)
            else:
                # a card's value range is its (lo, hi)
                value_range = (
                    None
                    if card.value_range is None
                    else cast(tuple[float, float], tuple(card.value_range))
                )
                decoded = read_frame_array(
                    path, rate_hz=source_rate, value_range=value_range, **options
                )
        else:
            raise PredictError(
                f"{path}: the {card.modality} model takes video ({', '.join(_VIDEO)}), a folder "
                f"of image frames or a (T, H, W[, C]) .npy, not "
                f"{path.suffix.lower() or 'a file without extension'}"
            )
    except PredictError:
        raise
    except DcatError as err:
        raise PredictError(str(err)) from None
    return decoded.astype(np.float32) / np.float32(255)


def _read_audio(path: Path, card: ModelCard) -> tuple[np.ndarray, float]:
    """Audio ``(T, C)`` with the model's channels (averaged to mono for a one-channel model)
    and the file's rate; ``.mp3``/``.m4a`` through PyAV."""
    from dcat.io.media import read_audio

    mono = card.num_channels == 1
    try:
        audio, file_rate = read_audio(path, mono=mono)
    except ImportError as err:
        raise PredictError(f"reading {path.suffix} audio needs {err}") from None
    except DcatError as err:  # soundfile's own error is chained
        raise PredictError(f"{path}: cannot read audio: {err.__cause__ or err}") from None
    if audio.shape[0] != card.num_channels:
        raise PredictError(
            f"{path}: has {audio.shape[0]} audio channel(s), the {card.modality} model "
            f"expects {card.num_channels}"
        )
    values = audio.T.astype(np.float64)
    names = list(card.channels or [f"channel {i + 1}" for i in range(card.num_channels)])
    _refuse_non_finite(path, values, names, None)
    return values, float(file_rate)


def _read_npy(path: Path, card: ModelCard) -> np.ndarray:
    """A ``(T, C)`` (or ``(T,)``) array with the model's channel count, as float64."""
    try:
        array = load_npy(path)
    except TableError as err:  # e.g. no NPY header: numpy's pickle fallback is refused
        raise PredictError(f"{path}: not a readable .npy array ({err.detail})") from None
    if not isinstance(array, np.ndarray):
        raise PredictError(f"{path}: expected a numeric (T, C) array, got {type(array).__name__}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise PredictError(
            f"{path}: expected a numeric (T, C) array, got {array.dtype} {array.shape}"
        )
    if array.shape[1] != card.num_channels:
        transposed = array.shape[0] == card.num_channels
        hint = " (it looks like (C, T): transpose it)" if transposed else ""
        raise PredictError(
            f"{path}: has {array.shape[1]} channels (shape {array.shape}), the "
            f"{card.modality} model expects {card.num_channels}{hint}"
        )
    return array.astype(np.float64)


def _normalize(card: ModelCard, windows: np.ndarray) -> np.ndarray:
    """Series windows ``(N, T, C)`` → normalised model inputs ``(N, C, T)``; video unchanged.

    The card's stored ``shift`` and ``scale`` are applied by
    :func:`dcat.io.normalization.normalize`, the function training normalises with
    (:meth:`~dcat.io.normalization.ChannelStats.apply`).

    Returns:
        float32 ``(N, C, T)``, or ``(N, F, C, H, W)`` frames for video.
    """
    # Training stores every input as float32 before normalising; rounding here first keeps the
    # deployed inputs bit-identical to the trained ones.
    x = windows.astype(np.float32)
    if card.is_video:
        return x
    x = np.transpose(x, (0, 2, 1))
    norm = card.normalization
    if norm:
        return normalize(center_positions(x, norm.get("center")), norm["shift"], norm["scale"])
    return x


@dataclass
class WindowPrediction:
    """One window's result.

    Attributes:
        start_s: Window start (seconds, on the recordings' clock).
        end_s: Window end (the longest window of the models used).
        label: Most probable class name.
        probabilities: ``(K,)`` class probabilities (the mean over the models used).
        models: Modalities whose models contributed.
    """

    start_s: float
    end_s: float
    label: str
    probabilities: np.ndarray
    models: list[str]


def window_inputs(
    card: ModelCard, recording: Recording, starts_s: Sequence[float] | np.ndarray
) -> np.ndarray:
    """The normalised model inputs of the windows of ``recording`` starting at ``starts_s``.

    A window starts at the step nearest its start time (kept inside the recording) and spans
    the model's :attr:`~dcat.io.card.ModelCard.window_samples` steps; series are normalised
    with the card's statistics by :func:`dcat.io.normalization.normalize`, the function
    training normalises with.

    Args:
        card: The model's card.
        recording: On the model's time grid (:func:`read_recording`).
        starts_s: ``(N,)`` window start times in seconds, on the recording's clock.

    Returns:
        float32 ``(N, C, T)`` for series, ``(N, F, C, H, W)`` for video.
    """
    length = card.window_samples
    last = len(recording.values) - length
    index = [
        min(max(round((s - recording.start_s) * recording.rate_hz), 0), last) for s in starts_s
    ]
    windows = np.stack([recording.values[i : i + length] for i in index])
    return _normalize(card, windows)


def predict(
    models: Sequence[DeployedModel],
    recordings: Mapping[str, Recording],
    *,
    stride_s: float | None = None,
    batch_size: int = 64,
) -> list[WindowPrediction]:
    """Slide windows over the recordings and classify each (fusing several models).

    Args:
        models: One or more models of distinct modalities with the same classes.
        recordings: Modality → recording (from :func:`read_recording`); models without one
            drop out.
        stride_s: Seconds between window starts; default half the shortest window.
        batch_size: Windows per model call.

    Returns:
        One :class:`WindowPrediction` per window, in time order.
    """
    if not models:
        raise PredictError("no model given")
    by_modality: dict[str, DeployedModel] = {}
    for model in models:
        if model.card.modality in by_modality:
            raise PredictError(
                f"two models for modality {model.card.modality!r}: "
                f"{by_modality[model.card.modality].folder} and {model.folder}"
            )
        by_modality[model.card.modality] = model
    classes = models[0].card.class_names
    for model in models[1:]:
        if model.card.class_names != classes:
            raise PredictError(
                f"{model.folder}: its classes differ from {models[0].folder}'s; fused models "
                "must share one class list"
            )
    extra = sorted(set(recordings) - set(by_modality))
    if extra:
        raise PredictError(
            f"recordings for {extra} but no model of that modality (models: {sorted(by_modality)})"
        )
    present = [m for m in by_modality if m in recordings]
    if not present:
        raise PredictError(f"no recording for any model's modality {sorted(by_modality)}")
    windows_s = {m: by_modality[m].card.window_samples / recordings[m].rate_hz for m in present}
    stride = min(windows_s.values()) / 2 if stride_s is None else float(stride_s)
    if not stride > 0:
        raise PredictError(f"stride must be a positive number of seconds, got {stride_s}")
    begin = max(recordings[m].start_s for m in present)
    ends = {m: recordings[m].start_s + recordings[m].duration_s for m in present}
    # half a step of slack so a window that fills the recording exactly is kept
    count = min(
        len(window_starts(begin, ends[m] + 0.5 / recordings[m].rate_hz, windows_s[m], stride))
        for m in present
    )
    starts = begin + np.arange(count) * stride
    if not count:
        raise PredictError(
            "the recordings do not overlap for one full window: "
            + ", ".join(
                f"{m} covers {recordings[m].start_s:.3f}–{ends[m]:.3f} s, window "
                f"{windows_s[m]:.3f} s"
                for m in present
            )
        )
    total = np.zeros((len(starts), len(classes)))
    for m in present:
        model = by_modality[m]
        for first in range(0, len(starts), batch_size):
            chunk = starts[first : first + batch_size]
            total[first : first + len(chunk)] += model.probabilities(
                window_inputs(model.card, recordings[m], chunk)
            )
    total /= len(present)
    longest = max(windows_s.values())
    return [
        WindowPrediction(s, s + longest, classes[int(np.argmax(p))], p, list(present))
        for s, p in zip(starts, total, strict=True)
    ]


def format_predictions(
    predictions: Sequence[WindowPrediction], class_names: Sequence[str], fmt: str = "csv"
) -> str:
    """CSV (``start_s, end_s, label, p_<class>...``) or JSON lines, one window per line."""
    if fmt == "jsonl":
        return "".join(
            json.dumps(
                {
                    "start_s": round(p.start_s, 6),
                    "end_s": round(p.end_s, 6),
                    "label": p.label,
                    "probabilities": {
                        c: float(v) for c, v in zip(class_names, p.probabilities, strict=True)
                    },
                    "models": p.models,
                }
            )
            + "\n"
            for p in predictions
        )
    if fmt != "csv":
        raise PredictError(f"output format must be csv or jsonl, got {fmt!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["start_s", "end_s", "label", *[f"p_{c}" for c in class_names]])
    for p in predictions:
        writer.writerow(
            [f"{p.start_s:.6f}", f"{p.end_s:.6f}", p.label, *[f"{v:.6g}" for v in p.probabilities]]
        )
    return buffer.getvalue()


def describe(models: Sequence[DeployedModel], recordings: Mapping[str, Any]) -> str:
    """One line on which models run and which drop out (no recording)."""
    used = [m.card.modality for m in models if m.card.modality in recordings]
    dropped = [m.card.modality for m in models if m.card.modality not in recordings]
    line = f"models used: {', '.join(used)}"
    return line + (f"; no recording for {', '.join(dropped)} (dropped)" if dropped else "")
