"""Media readers and the frame cache, on tiny WAV and MP4 files generated per test module."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch

import dcat.data.frame_store as frame_store
from dcat.data import PairedDataset
from dcat.data.frame_store import FrameStore, VideoClip
from dcat.data.paired import LazyArray
from dcat.io.media import (
    decode_audio_track,
    decode_video,
    read_wav,
    resample_audio,
)

FPS = 10
N_FRAMES = 20  # 2 s
HEIGHT, WIDTH = 48, 64
TONE_HZ = 440.0
AUDIO_RATE = 16000
TOLERANCE = 12  # |decoded − encoded| on solid colour frames (mpeg4 at a high bit rate: ≤ 3)


def colour(k: int) -> np.ndarray:
    """RGB of source frame ``k``: R and G move 12 levels a frame, so the index can be read back."""
    return np.array([8 + 12 * k, 240 - 12 * k, 60 + 120 * (k % 2)], dtype=np.int64)


def frame_index(frame: np.ndarray) -> int:
    """Which source frame a decoded RGB ``(3, H, W)`` frame is, from its mean red level."""
    return round((float(frame[0].mean()) - 8) / 12)


def tone(seconds: float, rate: int, hz: float = TONE_HZ) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * rate / len(audio))


def write_mp4(path: Path, *, audio: bool = False, frames: int = N_FRAMES) -> Path:
    """An MP4 of ``frames`` solid-colour 64×48 frames at 10 fps (mpeg4), optionally with a
    mono AAC 440 Hz tone at 16 kHz of the same length."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.bit_rate = 2_000_000
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=AUDIO_RATE)
            sound.layout = "mono"
        for k in range(frames):
            image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            image[:] = colour(k)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        if sound is not None:
            signal = tone(frames / FPS, AUDIO_RATE)
            for i in range(0, len(signal), 1024):
                chunk = av.AudioFrame.from_ndarray(
                    signal[None, i : i + 1024], format="fltp", layout="mono"
                )
                chunk.sample_rate, chunk.pts = AUDIO_RATE, i
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    write_mp4(folder / "video.mp4")
    write_mp4(folder / "av.mp4", audio=True)
    sf.write(folder / "tone.wav", tone(1.0, 8000), 8000)
    return folder


@pytest.fixture(scope="module")
def video(media_dir: Path) -> Path:
    return media_dir / "video.mp4"


# ---------------------------------------------------------------------------------------------
# read_wav, resample_audio


def test_read_wav_round_trip(tmp_path: Path) -> None:
    signal = tone(0.5, 8000)
    sf.write(tmp_path / "a.wav", signal, 8000, subtype="PCM_16")
    audio, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000
    assert audio.dtype == np.float32 and audio.shape == (4000,)
    np.testing.assert_allclose(audio, signal, atol=1 / 2**15 + 1e-6)


def test_read_wav_stereo_mono_mean_and_channels(tmp_path: Path) -> None:
    left, right = tone(0.25, 8000), np.full(2000, 0.25, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    mono, _ = read_wav(tmp_path / "s.wav")
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-6)
    both, rate = read_wav(tmp_path / "s.wav", mono=False)
    assert rate == 8000 and both.shape == (2, 2000) and both.dtype == np.float32
    np.testing.assert_allclose(both[1], right, atol=1e-6)


def test_read_wav_resampling_keeps_the_tone(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", tone(1.0, 8000), 8000)
    audio, rate = read_wav(tmp_path / "a.wav", sample_rate=16000)
    assert rate == 16000 and audio.shape == (16000,) and audio.dtype == np.float32
    assert abs(peak_hz(audio, 16000) - TONE_HZ) <= 1.0
    assert abs(np.abs(audio[1000:-1000]).max() - 0.5) < 0.01  # amplitude kept


def test_resample_audio_length_and_tone() -> None:
    signal = tone(1.0, 44100, hz=1000.0)
    out = resample_audio(signal, 44100, 16000)
    assert out.shape == (16000,) and out.dtype == np.float32
    assert abs(peak_hz(out, 16000) - 1000.0) <= 1.0
    # time is the last axis, and any length gives ceil(n · up / down) samples
    stereo = np.stack([signal[:1001], signal[:1001]])
    assert resample_audio(stereo, 44100, 16000).shape == (2, int(np.ceil(1001 * 160 / 441)))
    same = resample_audio(signal, 44100, 44100)
    np.testing.assert_array_equal(same, signal)
    assert same is not signal
    with pytest.raises(ValueError, match="rate must be a positive integer"):
        resample_audio(signal, 44100, 0)


def test_read_wav_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.wav: no such file"):
        read_wav(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(ValueError, match=r"bad\.wav: cannot read audio"):
        read_wav(bad)


# ---------------------------------------------------------------------------------------------
# decode_video


def test_decode_video_fps_sampling_picks_every_frame(video: Path) -> None:
    frames = decode_video(video, fps=FPS, size=(HEIGHT, WIDTH))
    assert frames.shape == (N_FRAMES, 3, HEIGHT, WIDTH) and frames.dtype == np.uint8
    for k, frame in enumerate(frames):
        error = np.abs(frame.reshape(3, -1).astype(np.int64) - colour(k)[:, None])
        assert error.max() < TOLERANCE, (k, error.max())


def test_decode_video_lower_fps_samples_frame_centres(video: Path) -> None:
    frames = decode_video(video, fps=5, size=(HEIGHT, WIDTH))
    assert len(frames) == 2 * 5  # duration × fps
    # sample k is at (k + 0.5) / 5 s = source frame 2k + 1
    assert [frame_index(f) for f in frames] == [2 * k + 1 for k in range(10)]
    # 3 fps over 2 s: ceil(6 − 0.5) = 6 samples at (k + 0.5) / 3 s
    frames = decode_video(video, fps=3, size=(HEIGHT, WIDTH))
    assert [frame_index(f) for f in frames] == [int((k + 0.5) / 3 * FPS) for k in range(6)]


def test_decode_video_frames_evenly_spaced(video: Path) -> None:
    frames = decode_video(video, fps=FPS, size=(HEIGHT, WIDTH), frames=4)
    assert frames.shape == (4, 3, HEIGHT, WIDTH)
    # 4 samples over 2 s: at 0.25, 0.75, 1.25, 1.75 s
    assert [frame_index(f) for f in frames] == [2, 7, 12, 17]
    # more samples than source frames: each frame repeats, in order
    many = decode_video(video, fps=FPS, size=(HEIGHT, WIDTH), frames=40)
    assert [frame_index(f) for f in many] == [k // 2 for k in range(40)]


def test_decode_video_start_and_duration(video: Path) -> None:
    frames = decode_video(video, fps=FPS, size=(HEIGHT, WIDTH), start_s=0.5, duration_s=1.0)
    assert [frame_index(f) for f in frames] == list(range(5, 15))
    tail = decode_video(video, fps=FPS, size=(HEIGHT, WIDTH), start_s=1.2)  # to the end
    assert [frame_index(f) for f in tail] == list(range(12, 20))
    spaced = decode_video(video, fps=FPS, size=(HEIGHT, WIDTH), frames=2, start_s=1.0)
    assert [frame_index(f) for f in spaced] == [12, 17]  # at 1.25 and 1.75 s


def test_decode_video_resize_and_grayscale(video: Path) -> None:
    small = decode_video(video, fps=FPS, size=(24, 20), frames=3)
    assert small.shape == (3, 3, 24, 20)
    large = decode_video(video, fps=FPS, size=(96, 100), frames=3)
    assert large.shape == (3, 3, 96, 100)
    for frames in (small, large):  # solid frames stay solid at any size: frames 3, 10, 16
        for frame, k in zip(frames, (3, 10, 16), strict=True):
            error = np.abs(frame.reshape(3, -1).astype(np.int64) - colour(k)[:, None])
            assert error.max() < TOLERANCE
    gray = decode_video(video, fps=FPS, size=(HEIGHT, WIDTH), grayscale=True)
    assert gray.shape == (N_FRAMES, 1, HEIGHT, WIDTH) and gray.dtype == np.uint8
    luma = np.array([colour(k) @ np.array([0.299, 0.587, 0.114]) for k in range(N_FRAMES)])
    assert np.abs(gray.reshape(N_FRAMES, -1) - luma[:, None]).max() < TOLERANCE


def test_decode_video_keeps_the_layout(tmp_path: Path) -> None:
    """Rows, columns and channels land where they were: top half red, bottom half blue, and a
    green bar over the left quarter (solid frames alone would not catch a transposed image)."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[: HEIGHT // 2] = (200, 30, 30)
    image[HEIGHT // 2 :] = (30, 30, 200)
    image[:, : WIDTH // 4] = (30, 200, 30)
    path = tmp_path / "layout.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = 2_000_000
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    for height, width in ((HEIGHT, WIDTH), (24, 32)):
        frame = decode_video(path, fps=FPS, size=(height, width), frames=1)[0].astype(np.int64)
        # away from the edges, which chroma subsampling and scaling blur
        top, bottom, left = height // 4, 3 * height // 4, width // 8
        right = 5 * width // 8
        assert np.abs(frame[:, top, right] - (200, 30, 30)).max() < TOLERANCE
        assert np.abs(frame[:, bottom, right] - (30, 30, 200)).max() < TOLERANCE
        assert np.abs(frame[:, top, left] - (30, 200, 30)).max() < TOLERANCE
        assert np.abs(frame[:, bottom, left] - (30, 200, 30)).max() < TOLERANCE


def test_decode_video_errors(tmp_path: Path, video: Path, media_dir: Path) -> None:
    size = (HEIGHT, WIDTH)
    with pytest.raises(ValueError, match=r"nothere\.mp4: no such file"):
        decode_video(tmp_path / "nothere.mp4", fps=FPS, size=size)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(ValueError, match=r"corrupt\.mp4: cannot read media"):
        decode_video(corrupt, fps=FPS, size=size)
    truncated = tmp_path / "truncated.mp4"  # the index (moov) is at the end of the file
    truncated.write_bytes(video.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"truncated\.mp4: cannot read media"):
        decode_video(truncated, fps=FPS, size=size)
    with pytest.raises(ValueError, match=r"tone\.wav: no video stream \(streams found: audio\)"):
        decode_video(media_dir / "tone.wav", fps=FPS, size=size)
    with pytest.raises(ValueError, match=r"video\.mp4: clip start 2\.5 s is outside the file's"):
        decode_video(video, fps=FPS, size=size, start_s=2.5)
    with pytest.raises(ValueError, match=r"video\.mp4: clip \[1\.5, 3\) s runs past the end"):
        decode_video(video, fps=FPS, size=size, start_s=1.5, duration_s=1.5)
    with pytest.raises(ValueError, match="start_s must be ≥ 0"):
        decode_video(video, fps=FPS, size=size, start_s=-1.0)
    with pytest.raises(ValueError, match="size must be"):
        decode_video(video, fps=FPS, size=(0, 10))
    with pytest.raises(ValueError, match="fps must be > 0"):
        decode_video(video, fps=0, size=size)


# ---------------------------------------------------------------------------------------------
# decode_audio_track


def test_decode_audio_track_keeps_the_tone(media_dir: Path) -> None:
    audio = decode_audio_track(media_dir / "av.mp4", sample_rate=8000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 2 * 8000) <= 1024  # AAC pads the last frame
    assert abs(peak_hz(audio[:16000], 8000) - TONE_HZ) <= 1.0
    assert abs(np.abs(audio[2000:14000]).max() - 0.5) < 0.05
    clip = decode_audio_track(media_dir / "av.mp4", sample_rate=16000, start_s=0.5, duration_s=1)
    assert clip.shape == (16000,)
    assert abs(peak_hz(clip, 16000) - TONE_HZ) <= 1.0
    # the clip is the same stretch of signal as the full decode (no offset after the seek)
    full = decode_audio_track(media_dir / "av.mp4", sample_rate=16000)
    np.testing.assert_allclose(clip[100:-100], full[8100:23900], atol=0.02)


def test_decode_audio_track_reads_wav_like_read_wav(media_dir: Path) -> None:
    expected, _ = read_wav(media_dir / "tone.wav")
    audio = decode_audio_track(media_dir / "tone.wav", sample_rate=8000)
    assert audio.shape == expected.shape
    np.testing.assert_allclose(audio, expected, atol=1e-4)


def test_decode_audio_track_errors(tmp_path: Path, video: Path, media_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"video\.mp4: no audio stream \(streams found: video\)"):
        decode_audio_track(video, sample_rate=16000)
    with pytest.raises(ValueError, match=r"gone\.mp4: no such file"):
        decode_audio_track(tmp_path / "gone.mp4", sample_rate=16000)
    with pytest.raises(ValueError, match=r"av\.mp4: clip start 3 s is outside"):
        decode_audio_track(media_dir / "av.mp4", sample_rate=16000, start_s=3.0)
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        decode_audio_track(media_dir / "av.mp4", sample_rate=0)


# ---------------------------------------------------------------------------------------------
# FrameStore


@pytest.fixture
def clips(tmp_path: Path, video: Path) -> list[VideoClip]:
    copy = tmp_path / "copy.mp4"  # a file of this test's own, so touching it is safe
    copy.write_bytes(video.read_bytes())
    return [
        VideoClip(video),
        VideoClip(copy, start_s=1.0),
        VideoClip(video, start_s=0.5, duration_s=1.0),
    ]


@pytest.fixture
def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    original = frame_store.decode_video

    def counting(path, **kwargs):
        calls.append(Path(path))
        return original(path, **kwargs)

    monkeypatch.setattr(frame_store, "decode_video", counting)
    return calls


def test_frame_store_build_decodes_once_and_reuses(
    tmp_path: Path, clips: list[VideoClip], count_decodes: list[Path]
) -> None:
    cache = tmp_path / "cache"
    seen: list[tuple[int, int]] = []
    store = FrameStore.build(
        clips, cache, frames=4, size=(24, 32), progress=lambda *a: seen.append(a)
    )
    assert count_decodes == [c.path for c in clips]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert store.shape == (3, 4, 3, 24, 32) and store.ndim == 5 and len(store) == 3
    assert isinstance(store, LazyArray)
    # only the finished store is left: no hidden temporary folder
    assert [p.name for p in cache.iterdir()] == [store.key[:32]]
    assert sorted(p.name for p in store.folder.iterdir()) == ["frames.npy", "meta.json"]

    again = FrameStore.build(clips, cache, frames=4, size=(24, 32))
    assert len(count_decodes) == 3  # nothing decoded
    assert again.key == store.key and again.fingerprint() == store.fingerprint()
    for i in range(3):
        np.testing.assert_array_equal(again[i], store[i])

    sample = store[0]
    assert sample.dtype == np.float32 and sample.shape == (4, 3, 24, 32)
    assert sample.min() >= 0.0 and sample.max() <= 1.0
    expected = decode_video(clips[2].path, fps=FPS, size=(24, 32), frames=4, start_s=0.5,
                            duration_s=1.0)  # fmt: skip
    np.testing.assert_allclose(store[2], expected / 255.0, atol=1e-6)
    # 4 samples over [1, 2) s, at 1.125, 1.375, 1.625, 1.875 s
    assert [frame_index(f * 255) for f in store[1]] == [11, 13, 16, 18]


def test_frame_store_touching_a_file_rebuilds(
    tmp_path: Path, clips: list[VideoClip], count_decodes: list[Path]
) -> None:
    cache = tmp_path / "cache"
    store = FrameStore.build(clips, cache, frames=2, size=(12, 16))
    stat = clips[1].path.stat()
    os.utime(clips[1].path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    rebuilt = FrameStore.build(clips, cache, frames=2, size=(12, 16))
    assert rebuilt.key != store.key and len(count_decodes) == 6
    np.testing.assert_array_equal(rebuilt[1], store[1])  # same content, new key
    # any decoding option is part of the key too
    gray = FrameStore.build(clips, cache, frames=2, size=(12, 16), grayscale=True)
    assert gray.shape == (3, 2, 1, 12, 16) and len({gray.key, rebuilt.key, store.key}) == 3


def test_frame_store_views_and_fingerprints(tmp_path: Path, clips: list[VideoClip]) -> None:
    store = FrameStore.build(clips, tmp_path / "cache", frames=3, size=(12, 16))
    view = store.take([2, 0])
    assert view.shape == (2, 3, 3, 12, 16) and len(view) == 2
    np.testing.assert_array_equal(view[0], store[2])
    np.testing.assert_array_equal(view[1], store[0])
    np.testing.assert_array_equal(view[-1], store[0])
    nested = view.take(np.array([1]))  # indices are relative to the view
    np.testing.assert_array_equal(nested[0], store[0])
    assert view._data is store._data  # a view over the same memory map, not a copy
    fingerprints = {store.fingerprint(), view.fingerprint(), nested.fingerprint()}
    assert len(fingerprints) == 3
    assert store.take([0]).fingerprint() == nested.fingerprint()
    assert [(c.path.name, c.start_s) for c in view.clips] == [("video.mp4", 0.5), ("video.mp4", 0)]
    np.testing.assert_array_equal(view.uint8(0), np.round(store[2] * 255).astype(np.uint8))
    with pytest.raises(IndexError):
        view[2]
    with pytest.raises(IndexError, match="out of range"):
        store.take([3])
    # pickles as (folder, key, indices): a worker reopens the map instead of copying the frames
    blob = pickle.dumps(view)
    assert len(blob) < 2000
    np.testing.assert_array_equal(pickle.loads(blob)[1], store[0])
    reopened = FrameStore.open(store.folder)
    assert reopened.fingerprint() == store.fingerprint()


def test_frame_store_in_paired_dataset(tmp_path: Path, clips: list[VideoClip]) -> None:
    store = FrameStore.build(clips, tmp_path / "cache", frames=2, size=(12, 16))
    dataset = PairedDataset(
        {"video": store, "imu": np.zeros((3, 6, 10), np.float32)},
        [0, 1, 0], [1, 1, 2], ["r0", "r1", "r2"], ["a", "b"],
    )  # fmt: skip
    assert dataset.inputs["video"] is store  # kept lazy, not loaded into memory
    assert dataset.shape("video") == (2, 3, 12, 16)
    subset = dataset.subset([2, 1])
    assert isinstance(subset.inputs["video"], FrameStore)
    item = subset[0]
    x = item["inputs"]["video"]
    assert x.dtype == torch.float32 and tuple(x.shape) == (2, 3, 12, 16)
    np.testing.assert_array_equal(x.numpy(), store[2])
    assert item["label"].item() == 0
    assert subset.fingerprint() != dataset.subset([1, 2]).fingerprint()


def test_frame_store_failure_leaves_nothing(tmp_path: Path, video: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"bad\.mp4: cannot read media"):
        FrameStore.build([VideoClip(video), VideoClip(bad)], cache, frames=2, size=(12, 16))
    assert list(cache.iterdir()) == []
    with pytest.raises(ValueError, match=r"absent\.mp4: no such file"):
        FrameStore.build([VideoClip(tmp_path / "absent.mp4")], cache, frames=2, size=(12, 16))
    with pytest.raises(ValueError, match=r"video\.mp4: clip start 5 s is outside"):
        FrameStore.build([VideoClip(video, start_s=5.0)], cache, frames=2, size=(12, 16))
    with pytest.raises(ValueError, match="at least one clip"):
        FrameStore.build([], cache, frames=2, size=(12, 16))
    with pytest.raises(ValueError, match="not a frame store"):
        FrameStore.open(cache)
    assert list(cache.iterdir()) == []


def test_frame_store_from_array(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (4, 2, 1, 6, 5), dtype=np.uint8)
    store = FrameStore.from_array(frames, tmp_path)
    assert store.shape == (4, 2, 1, 6, 5) and store.meta["grayscale"] is True
    np.testing.assert_array_equal(store[3], frames[3] / np.float32(255))
    assert store[3].dtype == np.float32
    again = FrameStore.from_array(frames.copy(), tmp_path)  # same content: same folder
    assert again.folder == store.folder and len(list(tmp_path.iterdir())) == 1
    changed = frames.copy()
    changed[0, 0, 0, 0, 0] ^= 1
    assert FrameStore.from_array(changed, tmp_path).key != store.key
    with pytest.raises(ValueError, match=r"uint8 array \(N, F, C, H, W\)"):
        FrameStore.from_array(frames.astype(np.float32), tmp_path)


def test_raw_batch_returns_stored_uint8(tmp_path) -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(5, 2, 3, 4, 4), dtype=np.uint8)
    store = FrameStore.from_array(frames, tmp_path)
    view = store.take([4, 1, 3])
    raw = view.raw_batch(np.array([0, 2]))
    assert raw.dtype == np.uint8 and np.array_equal(raw, frames[[4, 3]])
    np.testing.assert_allclose(view[1], frames[1].astype(np.float32) / 255)


def test_media_libraries_are_imported_on_first_use() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dcat, dcat.data, dcat.io.media; "
        "print(int('av' in sys.modules), int('soundfile' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]


def test_raw_into_copies_consecutive_and_scattered_rows(tmp_path) -> None:
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, size=(6, 2, 1, 3, 3), dtype=np.uint8)
    store = FrameStore.from_array(frames, tmp_path)
    out = np.empty((3, 2, 1, 3, 3), dtype=np.uint8)
    store.raw_into(np.array([1, 2, 3]), out)
    assert np.array_equal(out, frames[1:4])
    view = store.take([5, 0, 3])
    view.raw_into(np.array([0, 1, 2]), out)
    assert np.array_equal(out, frames[[5, 0, 3]])
