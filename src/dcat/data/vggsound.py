"""VGGSound (Chen et al., ICASSP 2020): 10 s YouTube clips, audio + video, 309 classes.

Files (as in the official VGGSound repository): the index ``vggsound.csv`` has no header and
one clip per line, ``YouTube ID, start seconds, label, train/test split`` (labels with commas
are CSV-quoted); the clips themselves are fetched by each user, so their layout is not fixed.
This reader expects the official naming ``<ytid>_<start:06d>.mp4`` (also
``<ytid>_<start>_<end>.mp4`` from some download scripts) anywhere under ``<root>/video/`` (or
under ``<root>`` without it), and uses pre-extracted audio ``<same stem>.wav`` (the official
``preprocess_audio.py`` output, 16 kHz mono) from ``<root>/audio/`` or beside the video when
present, otherwise the MP4's audio track. YouTube link rot leaves many clips missing:
missing, empty or unreadable clips are skipped, counted in ``dataset.skipped`` and reported
with a warning. VGGSound has no subject annotation. Licence CC BY 4.0; the videos' copyright
stays with their owners.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from dcat.data.assemble import Recording, assemble
from dcat.data.frame_store import FrameStore, VideoClip, frame_channels
from dcat.data.paired import PairedDataset, StreamInfo
from dcat.data.registry import register_dataset
from dcat.errors import DcatError
from dcat.io.media import av, decode_audio_track, read_wav
from dcat.io.table import TableError, read_rows

__all__ = ["VGGSoundRow", "load_vggsound", "read_vggsound_csv"]

_SPLITS = ("train", "test")
# YouTube ids are 11 characters of [A-Za-z0-9_-]; fixing the length keeps ids that contain
# "_<digits>" from being split in the wrong place.
_CLIP_STEM = re.compile(r"^(?P<ytid>[A-Za-z0-9_-]{11})_(?P<start>\d+)(?:_(?P<end>\d+))?$")
_SKIP_REASONS = ("missing", "unreadable", "no_audio")


class VGGSoundRow(NamedTuple):
    """One line of ``vggsound.csv``.

    Attributes:
        ytid: YouTube video id (may start with ``-``).
        start_s: Clip start in the source video, whole seconds; the clip is ``[start, start+10)``.
        label: Class name, e.g. ``"people marching"``.
        split: ``"train"`` or ``"test"``.
    """

    ytid: str
    start_s: int
    label: str
    split: str

    @property
    def stem(self) -> str:
        """The official clip file stem, ``<ytid>_<start:06d>``."""
        return f"{self.ytid}_{self.start_s:06d}"


def read_vggsound_csv(path: str | Path) -> list[VGGSoundRow]:
    """Read the header-less ``vggsound.csv`` (``ytid,start_seconds,label,split`` per line).

    Blank lines and lines starting with ``#`` are skipped.

    Returns:
        The rows in file order.

    Raises:
        DcatError: A row without 4 fields, an empty id or label, a start that is not a whole
            number of seconds ≥ 0, or a split other than ``train``/``test`` (file, row from 1
            and field named).
    """
    path = Path(path)
    try:
        # rows from 1 at the file's first line, blank and comment lines counted
        table = read_rows(
            path,
            header=False,
            fields=4,
            comment="#",
            empty="no clips (expected lines 'ytid,start,label,split')",
        )
    except TableError as err:
        if err.kind != "fields":
            raise
        raise DcatError(
            f"{path}: row {err.row}: expected 4 fields 'YouTube ID,start seconds,label,"
            f"split' (quote labels that contain commas), got {len(err.cells)}: {err.cells!r}"
        ) from None
    rows: list[VGGSoundRow] = []
    for row, cells in zip(table.row_numbers, table.cells, strict=True):
        ytid, start, label, split = (c.strip() for c in cells)
        if not ytid:
            raise DcatError(f"{path}: row {row}, field 'ytid': empty YouTube id")
        try:
            start_f = float(start)
        except ValueError:
            start_f = float("nan")
        if not (start_f >= 0 and start_f == int(start_f)):
            raise DcatError(
                f"{path}: row {row}, field 'start_seconds': expected whole seconds ≥ 0, "
                f"got {start!r}"
            )
        if not label:
            raise DcatError(f"{path}: row {row}, field 'label': empty label")
        if split not in _SPLITS:
            raise DcatError(
                f"{path}: row {row}, field 'split': expected 'train' or 'test', got {split!r}"
            )
        rows.append(VGGSoundRow(ytid, int(start_f), label, split))
    return rows


def _index(folder: Path, suffix: str) -> tuple[dict[str, Path], dict[tuple[str, int], Path]]:
    """Files ``*<suffix>`` under ``folder``: by exact stem, and by parsed ``(ytid, start)``."""
    by_stem: dict[str, Path] = {}
    by_key: dict[tuple[str, int], Path] = {}
    if not folder.is_dir():
        return by_stem, by_key
    # Sorted, so a clip stored twice (e.g. in two split folders) resolves the same way each run.
    for path in sorted(folder.rglob(f"*{suffix}")):
        by_stem.setdefault(path.stem, path)
        match = _CLIP_STEM.match(path.stem)
        if match:
            by_key.setdefault((match["ytid"], int(match["start"])), path)
    return by_stem, by_key


def _lookup(
    index: tuple[dict[str, Path], dict[tuple[str, int], Path]], row: VGGSoundRow
) -> Path | None:
    by_stem, by_key = index
    return by_stem.get(row.stem) or by_key.get((row.ytid, row.start_s))


def _probe(path: Path, need_audio: bool) -> str | None:
    """Why the clip cannot be used (a key of ``skipped``), or ``None`` when it can."""
    if path.stat().st_size == 0:  # an interrupted download
        return "unreadable"
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                return "unreadable"
            if need_audio and not container.streams.audio:
                return "no_audio"
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return "unreadable"
    return None


def _fit_length(audio: np.ndarray, samples: int) -> np.ndarray:
    """Tile a short signal (as the official dataloader does) or cut a long one to ``samples``."""
    if len(audio) < samples:
        audio = np.tile(audio, int(np.ceil(samples / len(audio))))
    return audio[:samples]


@register_dataset(
    "vggsound",
    summary="VGGSound: video + audio of 10 s clips, 309 classes (clips fetched by the user)",
    root_defaults={"frame_cache": ".dcat_frames"},
)
def load_vggsound(
    root: str | Path,
    *,
    frame_cache: str | Path,
    classes: Sequence[str],
    frames: int = 30,
    size: tuple[int, int] = (224, 224),
    audio_rate: int = 16000,
    audio_s: float = 10.0,
    split: Literal["train", "test"] | None = None,
    subjects: Literal["none", "video"] = "none",
    csv_path: str | Path | None = None,
    grayscale: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PairedDataset:
    """Read a class subset of VGGSound into modalities ``video`` and ``audio``.

    Defaults: 30 frames per clip (Table I, VGGSound-Video "Window/Stride Length" 30) at
    224 × 224 (§V-B), evenly spaced over the clip; 10 s of audio at 16 kHz (the clip length and
    the official preprocessing). The paper uses "a random subset of 9 classes" it does not name,
    so ``classes`` is required.

    Args:
        root: Folder holding ``vggsound.csv`` and the clips (``video/``, optional ``audio/``).
        frame_cache: Folder of the decoded-frame cache (:class:`~dcat.data.frame_store.FrameStore`).
        classes: Class names as written in the CSV (e.g. ``"playing tennis"``); labels are
            their positions in this sequence.
        frames: Frames per clip.
        size: ``(H, W)`` of the frames.
        audio_rate: Audio sampling rate in Hz (WAVs and tracks are resampled to it).
        audio_s: Seconds of audio per clip, from the clip's start; shorter audio is tiled
            (repeated) to this length, as the official dataloader does.
        split: Keep only rows of this CSV split; ``None`` keeps both (the paper draws its own
            70/15/15 split).
        subjects: ``"none"``: every subject is 0 (VGGSound has no subject annotation);
            ``"video"``: one id per YouTube video (ids numbered in order of first appearance,
            ``subject_names`` gives the YouTube id), so clips of one source video can be kept
            in one split part.
        csv_path: The index file; default ``<root>/vggsound.csv``.
        grayscale: Decode frames as luma (``C = 1``).
        progress: ``progress(done, total)`` while clips are decoded.

    Returns:
        ``video`` a :class:`~dcat.data.frame_store.FrameStore` ``(N, frames, C, H, W)``, ``audio``
        ``(N, 1, round(audio_s * audio_rate))`` float32 mono; labels index ``classes``;
        recordings the clip stems ``<ytid>_<start:06d>``. The dataset also carries
        ``skipped``: reason → count (``missing``: no video file; ``unreadable``: empty or not
        decodable, or no video stream; ``no_audio``: no WAV and no audio track) and
        ``skipped_clips``: reason → the stems skipped for it.

    Raises:
        DcatError: A missing ``vggsound.csv``, a malformed row (file, row and field named), an
            unknown class or split, bad options, or no usable clip at all. A clip that opens but
            fails while its frames are decoded also raises (from
            :meth:`~dcat.data.frame_store.FrameStore.build`).
    """
    root = Path(root)
    index_file, samples = _checked(root, csv_path, split, subjects, classes, audio_s, audio_rate)
    rows = _select_rows(index_file, classes, split)
    clips, skipped = _usable_clips(root, rows, audio_rate, samples)
    _report_skipped(skipped, len(rows), len(clips), root)
    store = FrameStore.build(
        [VideoClip(clip.video) for clip in clips],
        frame_cache,
        frames=frames,
        size=size,
        grayscale=grayscale,
        progress=progress,
    )
    streams = _streams(frames, audio_s, audio_rate, grayscale)
    return _dataset(clips, skipped, store, classes, subjects, streams)


def _checked(
    root: Path,
    csv_path: str | Path | None,
    split: str | None,
    subjects: str,
    classes: Sequence[str],
    audio_s: float,
    audio_rate: int,
) -> tuple[Path, int]:
    """Check the options of :func:`load_vggsound` before anything is read.

    Returns:
        The index file, and the audio samples per clip.

    Raises:
        DcatError: A missing index file, an unknown split or subjects mode, classes that are
            not distinct names, or no audio samples.
    """
    index_file = Path(csv_path) if csv_path is not None else root / "vggsound.csv"
    if not index_file.is_file():
        raise DcatError(f"VGGSound index {index_file} not found")
    if split is not None and split not in _SPLITS:
        raise DcatError(f"split must be 'train', 'test' or None, got {split!r}")
    if subjects not in ("none", "video"):
        raise DcatError(f"subjects must be 'none' or 'video', got {subjects!r}")
    if isinstance(classes, str) or not classes or len(set(classes)) != len(classes):
        raise DcatError(f"classes must be a non-empty sequence of distinct names, got {classes!r}")
    samples = round(audio_s * audio_rate)
    if not np.isfinite(audio_s) or samples < 1:
        raise DcatError(f"audio_s={audio_s} at {audio_rate} Hz gives no audio samples")
    return index_file, samples


def _select_rows(index_file: Path, classes: Sequence[str], split: str | None) -> list[VGGSoundRow]:
    """The index rows of ``classes`` (in ``split`` unless ``None``), in file order.

    Raises:
        DcatError: A malformed index, a class it does not name, or no row selected.
    """
    rows = read_vggsound_csv(index_file)
    labels_in_csv = {row.label for row in rows}
    for name in classes:
        if name not in labels_in_csv:
            close = difflib.get_close_matches(name, sorted(labels_in_csv), n=3)
            raise DcatError(
                f"{index_file}: unknown label {name!r} in classes"
                + (f" (did you mean {close}?)" if close else "")
            )
    wanted = set(classes)
    rows = [r for r in rows if r.label in wanted and (split is None or r.split == split)]
    if not rows:
        raise DcatError(f"{index_file}: no rows of classes {list(classes)} in split {split!r}")
    return rows


class _Clip(NamedTuple):
    """One usable clip: its index row, its MP4 and ``(samples,)`` of its audio."""

    row: VGGSoundRow
    video: Path
    audio: np.ndarray


def _usable_clips(
    root: Path, rows: Sequence[VGGSoundRow], audio_rate: int, samples: int
) -> tuple[list[_Clip], dict[str, list[str]]]:
    """The clips of ``rows`` found and readable under ``root``, audio fitted to ``samples``.

    Returns:
        The usable clips in row order, and reason → the stems skipped for it (every reason of
        ``_SKIP_REASONS``, in that order).
    """
    videos = _index(root / "video" if (root / "video").is_dir() else root, ".mp4")
    wavs = _index(root / "audio", ".wav")
    skipped: dict[str, list[str]] = {reason: [] for reason in _SKIP_REASONS}
    clips: list[_Clip] = []
    for row in rows:
        video = _lookup(videos, row)
        if video is None:
            skipped["missing"].append(row.stem)
            continue
        wav = _lookup(wavs, row) or (
            video.with_suffix(".wav") if video.with_suffix(".wav").is_file() else None
        )
        audio = _read_audio(video, wav, audio_rate)
        if isinstance(audio, str):
            skipped[audio].append(row.stem)
            continue
        clips.append(_Clip(row, video, _fit_length(audio, samples)))
    return clips, skipped


def _read_audio(video: Path, wav: Path | None, audio_rate: int) -> np.ndarray | str:
    """A clip's mono audio ``(T,)`` at ``audio_rate``, from ``wav`` when there is one, else
    from the MP4's track; or why the clip cannot be used (a key of ``skipped``)."""
    reason = _probe(video, need_audio=wav is None)
    if reason is not None:
        return reason
    try:
        if wav is not None:
            audio, _ = read_wav(wav, sample_rate=audio_rate, mono=True)
        else:
            audio = decode_audio_track(video, sample_rate=audio_rate)
    except ValueError:
        return "unreadable"
    return audio if len(audio) else "no_audio"


def _report_skipped(skipped: dict[str, list[str]], selected: int, usable: int, root: Path) -> None:
    """Warn of skipped clips (attributed to the caller of :func:`load_vggsound`).

    Raises:
        DcatError: None of the ``selected`` clips is usable.
    """
    counts = {reason: len(stems) for reason, stems in skipped.items()}
    total = sum(counts.values())
    if total:
        examples = [stem for stems in skipped.values() for stem in stems][:3]
        warnings.warn(
            f"VGGSound: skipped {total} of {selected} clips ({counts}; e.g. {examples}) "
            f"under {root}",
            stacklevel=3,
        )
    if not usable:
        raise DcatError(f"VGGSound: none of the {selected} selected clips is usable ({counts})")


def _streams(
    frames: int, audio_s: float, audio_rate: int, grayscale: bool
) -> dict[str, StreamInfo]:
    """The ``video`` and ``audio`` streams of the clips."""
    return {
        # frames spread evenly over each clip, nominally as long as its audio
        "video": StreamInfo(
            frames / audio_s,
            frame_channels(grayscale),
            note=f"{frames} frames spread over each clip ({audio_s:g} s of audio)",
            kind="video",
            resampled=True,  # the files' own frame rate is not read here
        ),
        "audio": StreamInfo(
            float(audio_rate), ("audio",), note=f"clips of {audio_s:g} s", kind="audio"
        ),
    }


def _dataset(
    clips: Sequence[_Clip],
    skipped: dict[str, list[str]],
    store: FrameStore,
    classes: Sequence[str],
    subjects: str,
    streams: dict[str, StreamInfo],
) -> PairedDataset:
    """The data set of ``clips``: ``video`` the frames in ``store``, ``audio``
    ``(N, 1, samples)``; subjects per the ``subjects`` mode of :func:`load_vggsound`."""
    label_of = {name: i for i, name in enumerate(classes)}
    ytids = [clip.row.ytid for clip in clips]
    if subjects == "video":
        order = {ytid: i for i, ytid in enumerate(dict.fromkeys(ytids))}
        subject_ids = [order[y] for y in ytids]
        subject_names = {i: y for y, i in order.items()}
    else:
        subject_ids, subject_names = [0] * len(clips), {}
    recordings = (
        Recording({"audio": clip.audio[None, :]}, label_of[clip.row.label], subject, clip.row.stem)
        for clip, subject in zip(clips, subject_ids, strict=True)
    )
    dataset = assemble(
        recordings,
        list(classes),
        name="vggsound",
        subject_names=subject_names,
        group="video" if subjects == "video" else "subject",
        streams=streams,
        stored={"video": store},
    )
    # Attributes of this dataset only: views made by subset()/select() do not carry them.
    dataset.skipped = {reason: len(stems) for reason, stems in skipped.items()}
    dataset.skipped_clips = skipped
    return dataset
