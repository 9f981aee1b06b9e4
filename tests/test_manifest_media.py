"""Media in the manifest: video files, image folders, frame arrays and audio, segmented and
continuous, with generated files of known content (and the real AVLetters lips as PNG frames)."""

from __future__ import annotations

import csv
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from dcat.data.frame_store import FrameStore
from dcat.data.manifest import load_manifest
from dcat.errors import DcatError

from conftest import shared_dataset

FPS = 10
SIZE = (24, 32)  # H, W of the generated frames
RATE = 8000  # audio
TONE_HZ = 250.0
GREY = 1.0 / 255  # one grey level, in stored-frame units


def level(k: int) -> int:
    """Grey level of generated frame ``k``: 9 levels a frame, readable back through a codec."""
    return 10 + 9 * (k % 26)


def write_video(path: Path, frames: int, *, fps: int = FPS, size: tuple[int, int] = SIZE) -> Path:
    """An MP4 (mpeg4, high bit rate) of solid grey frames: frame ``k`` at :func:`level`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt, stream.bit_rate = "yuv420p", 4_000_000
        for k in range(frames):
            image = np.full((*size, 3), level(k), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_png_folder(folder: Path, frames: int, size: tuple[int, int] = SIZE) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(frames):
        Image.fromarray(np.full(size, level(k), np.uint8)).save(folder / f"frame_{k + 1:04d}.png")
    return folder


def depth_frames(frames: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """``(T, H, W)`` uint16 depth in mm: frame ``k`` is ``1000 + 100 k`` everywhere."""
    return np.stack([np.full(size, 1000 + 100 * k, np.uint16) for k in range(frames)])


def tone(seconds: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    """``(T, channels)`` float32: a 250 Hz tone over a microphone's noise floor (a pure tone
    leaves mel bins near 0, whose logarithm magnifies float rounding past export parity)."""
    t = np.arange(round(seconds * rate)) / rate
    floor = np.random.default_rng(len(t)).normal(scale=0.01, size=len(t))
    wave = (0.5 * np.sin(2 * np.pi * TONE_HZ * t) + floor).astype(np.float32)
    return np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1)


def write_table(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_segmented_media(tmp_path: Path, *, samples: int = 4, seconds: float = 2.0) -> Path:
    """Segmented samples of 2 s: cam (MP4), pics (PNG folder), depth (.npy), mic (WAV), imu."""
    folder = tmp_path / "camdata"
    frames = round(seconds * FPS)
    rows = []
    for i in range(samples):
        subject, label = f"p{i // 2 + 1}", ("wave", "clap")[i % 2]
        write_video(folder / "cam" / f"{i}.mp4", frames)
        write_png_folder(folder / "pics" / f"{i}", frames)
        for sub in ("depth", "mic", "imu"):
            (folder / sub).mkdir(exist_ok=True)
        np.save(folder / "depth" / f"{i}.npy", depth_frames(frames))
        sf.write(folder / "mic" / f"{i}.wav", tone(seconds), RATE)
        np.save(folder / "imu" / f"{i}.npy", np.random.default_rng(i).normal(size=(100, 6)))
        rows.append([subject, label, f"cam/{i}.mp4", f"pics/{i}", FPS, f"depth/{i}.npy", FPS,
                     f"mic/{i}.wav", f"imu/{i}.npy", 50])  # fmt: skip
    header = ["subject", "label", "cam", "pics", "pics_hz", "depth", "depth_hz", "mic", "imu",
              "imu_hz"]  # fmt: skip
    return write_table(folder / "manifest.csv", header, rows)


SEGMENTED_OPTIONS = {
    "media": {"cam": {"frames": 4, "color": "gray"}, "pics": {"frames": 4}, "depth": {"frames": 4}},
    "min_class_samples": 1,
}


def test_segmented_manifest_reads_video_images_depth_and_audio(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path)
    cache = tmp_path / "cache"
    data = load_manifest(manifest, frame_cache=cache, **SEGMENTED_OPTIONS)
    assert len(data) == 4 and data.class_names == ["clap", "wave"]
    # 4 frames evenly over 2 s: shown at 0.25, 0.75, 1.25, 1.75 s → source frames 2, 7, 12, 17
    expected = np.array([level(k) for k in (2, 7, 12, 17)], np.float64) / 255
    for modality in ("cam", "pics", "depth"):
        assert isinstance(data.inputs[modality], FrameStore), modality
        assert data.shape(modality) == (4, 1, *SIZE), modality
        stream = data.stream(modality)
        assert stream.kind == "video" and stream.channels == ("gray",)
        assert stream.rate_hz == pytest.approx(4 / 2.0)  # 4 frames per 2 s sample
    cam = data[0]["inputs"]["cam"].numpy()
    np.testing.assert_allclose(cam.mean(axis=(1, 2, 3)), expected, atol=3 * GREY)
    pics = data.inputs["pics"].uint8(1)  # PNG frames are exact
    np.testing.assert_array_equal(pics[:, 0, 0, 0], [level(k) for k in (2, 7, 12, 17)])
    # depth 1000…2900 mm mapped to 0…255 (the range over all arrays)
    depth = data.inputs["depth"].uint8(0)[:, 0, 0, 0]
    np.testing.assert_array_equal(depth, np.rint((np.array([2, 7, 12, 17]) * 100) * 255 / 1900))
    assert data.stream("depth").value_range == (1000.0, 2900.0)
    # audio keeps its rate: 2 s at 8 kHz, the tone itself
    assert data.shape("mic") == (1, 2 * RATE)
    assert data.stream("mic").kind == "audio" and data.stream("mic").rate_hz == RATE
    np.testing.assert_allclose(data.inputs["mic"][2, 0], tone(2.0)[:, 0], atol=1e-4)
    assert data.shape("imu") == (6, 100) and data.stream("imu").kind == "series"


def test_segmented_media_decodes_once_then_reads_the_cache(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    cache = tmp_path / "cache"
    options = {"media": {"cam": {"frames": 3, "size": [12, 16]}}, "min_class_samples": 1}
    first = load_manifest(manifest, frame_cache=cache, **options)
    stores = sorted(p.name for p in cache.iterdir())
    again = load_manifest(manifest, frame_cache=cache, **options)
    assert sorted(p.name for p in cache.iterdir()) == stores  # nothing decoded again
    assert first.shape("cam") == (3, 3, 12, 16)  # RGB by default, resized
    np.testing.assert_array_equal(first[1]["inputs"]["cam"], again[1]["inputs"]["cam"])


def test_segmented_video_fps_option_sets_the_frames(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    data = load_manifest(
        manifest, frame_cache=tmp_path / "c", min_class_samples=1,
        media={"cam": {"fps": 5, "color": "gray"}},
    )  # fmt: skip
    assert data.shape("cam") == (10, 1, *SIZE)  # 5 fps × the 2 s median clip
    frames = data.inputs["cam"].uint8(0)[:, 0].mean(axis=(1, 2))
    np.testing.assert_allclose(frames, [level(2 * k + 1) for k in range(10)], atol=3)


def make_continuous_media(tmp_path: Path, *, offset: float = 1.0) -> Path:
    """One 6 s recording: cam MP4 at 10 fps starting ``offset`` s late, a 50 Hz IMU from 0 s,
    a stereo WAV tone at 8 kHz, and a label file (wave before 3.5 s, then clap)."""
    folder = tmp_path / "rec"
    write_video(folder / "cam.mp4", 60)
    (folder / "imu").mkdir(parents=True)
    np.save(folder / "imu" / "r1.npy", np.random.default_rng(0).normal(size=(350, 3)))
    sf.write(folder / "mic.wav", tone(7.0, channels=2), RATE)
    times = np.arange(70) / 10
    write_table(folder / "labels.csv", ["time", "label"],
                [[t, "wave" if t < 3.5 else "clap"] for t in times])  # fmt: skip
    header = ["subject", "recording", "label_file", "cam", "cam_offset_s", "imu", "imu_hz", "mic"]
    row = ["anna", "r1", "labels.csv", "cam.mp4", offset, "imu/r1.npy", 50, "mic.wav"]
    return write_table(folder / "manifest.csv", header, [row])


def test_continuous_manifest_cuts_video_windows_on_the_common_clock(tmp_path: Path) -> None:
    manifest = make_continuous_media(tmp_path)
    data = load_manifest(
        manifest, window_s=1.0, stride_s=0.5, frame_cache=tmp_path / "cache",
        media={"cam": {"color": "gray"}}, min_class_samples=1,
    )  # fmt: skip
    # cam covers 1–7 s, imu 0–6.98 s (last sample), mic 0–7 s: windows at 1.0, 1.5, … 5.5
    assert len(data) == 10
    assert data.recordings[0] == "r1_w0"
    assert data.shape("cam") == (10, 1, *SIZE)  # 1 s at the container's 10 fps
    assert data.stream("cam").rate_hz == FPS and data.stream("cam").kind == "video"
    # window w starts 0.5 w s into the video (1.0 s on the common clock): frames 5w … 5w + 9
    for w in (0, 3, 9):
        shown = data.inputs["cam"].uint8(w)[:, 0].mean(axis=(1, 2))
        np.testing.assert_allclose(shown, [level(5 * w + k) for k in range(10)], atol=3)
    assert data.shape("imu") == (3, 50) and data.shape("mic") == (2, RATE)
    assert data.stream("mic").kind == "audio" and data.stream("mic").channels == (
        "mic_1",
        "mic_2",
    )
    # the mic window at 1.0 s holds the tone from sample 8000 on (channel 0 at half level),
    # interpolated at step centres (k + 0.5) / rate like every continuous window
    wave = tone(7.0, channels=2)[:, 0].astype(np.float64)
    centres = (wave[8000:16000] + wave[8001:16001]) / 2
    np.testing.assert_allclose(data.inputs["mic"][0, 0], centres, atol=1e-4)
    labels = [data.class_names[i] for i in data.labels]
    assert labels[:4] == ["wave"] * 4 and labels[-1] == "clap"


def test_continuous_offset_moves_the_video_on_the_common_clock(tmp_path: Path) -> None:
    later = load_manifest(
        make_continuous_media(tmp_path / "a", offset=0.0), window_s=1.0, stride_s=1.0,
        frame_cache=tmp_path / "c", media={"cam": {"color": "gray"}}, min_class_samples=1,
    )  # fmt: skip
    # no offset: cam covers 0–6 s, windows at 0, 1, …, 5; window 2 shows frames 20…29
    assert len(later) == 6
    shown = later.inputs["cam"].uint8(2)[:, 0].mean(axis=(1, 2))
    np.testing.assert_allclose(shown, [level(20 + k) for k in range(10)], atol=3)


# --- errors -----------------------------------------------------------------------------------


def _expect(manifest: Path, pattern: str, **options) -> None:
    with pytest.raises(DcatError, match=pattern):
        load_manifest(manifest, **options)


def test_truncated_video_is_named_with_its_row_and_column(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    video = manifest.parent / "cam" / "1.mp4"
    video.write_bytes(video.read_bytes()[:300])
    _expect(manifest, r"manifest.csv, row 2, column 'cam': .*1\.mp4", min_class_samples=1,
            frame_cache=tmp_path / "c")  # fmt: skip


def test_video_shorter_than_the_window(tmp_path: Path) -> None:
    manifest = make_continuous_media(tmp_path)
    write_video(manifest.parent / "cam.mp4", 5)  # 0.5 s
    _expect(manifest, r"row 1, column 'cam': .*cam\.mp4 lasts 0\.5 s, shorter than one window "
            r"of 1 s", window_s=1.0, stride_s=0.5, frame_cache=tmp_path / "c")  # fmt: skip


def test_missing_image_frame(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    (manifest.parent / "pics" / "1" / "frame_0007.png").unlink()
    _expect(manifest, r"row 2, column 'pics': .*missing image frame 7", min_class_samples=1,
            frame_cache=tmp_path / "c")  # fmt: skip


def test_audio_with_another_channel_count(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    sf.write(manifest.parent / "mic" / "1.wav", tone(2.0, channels=2), RATE)
    _expect(manifest, r"row 2, column 'mic': .*1\.wav has 2 audio channel\(s\), the modality "
            r"'mic' has 1 in row 1", min_class_samples=1, frame_cache=tmp_path / "c")  # fmt: skip
    # averaging the channels accepts it
    data = load_manifest(manifest, min_class_samples=1, frame_cache=tmp_path / "c",
                         media={"mic": {"mono": True}})  # fmt: skip
    assert data.shape("mic") == (1, 2 * RATE)


def test_mixed_frame_sizes_within_one_sensor(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    write_video(manifest.parent / "cam" / "1.mp4", 20, size=(48, 64))
    _expect(manifest, r"row 2, column 'cam': modality 'cam' has frames of 24×32 pixels in row 1 "
            r"but 48×64", min_class_samples=1, frame_cache=tmp_path / "c")  # fmt: skip
    from PIL import Image

    write_video(manifest.parent / "cam" / "1.mp4", 20)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(
        manifest.parent / "pics" / "0" / "frame_0003.png"
    )
    _expect(manifest, r"row 1, column 'pics': .*frame_0003\.png: frame of "
            r"10×10 pixels, the sequence's first frame is 24×32", min_class_samples=1,
            frame_cache=tmp_path / "c", media={"pics": {"frames": 20}})  # fmt: skip


def test_rate_column_that_contradicts_the_container(tmp_path: Path) -> None:
    manifest = make_continuous_media(tmp_path)
    text = manifest.read_text().replace("cam,cam_offset_s", "cam,cam_hz").replace(",1.0,", ",30,")
    manifest.write_text(text)
    _expect(manifest, r"row 1, column 'cam_hz': 30 Hz contradicts .*cam\.mp4, which the "
            r"container says is 10 fps", window_s=1.0, stride_s=0.5)  # fmt: skip


def test_media_options_are_checked(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    _expect(manifest, r"media\.cam: unknown option\(s\) \['frame'\].*did you mean 'frames'",
            media={"cam": {"frame": 4}})  # fmt: skip
    _expect(manifest, r"media names unknown modalities \['camera'\]",
            media={"camera": {"frames": 4}})  # fmt: skip
    _expect(manifest, r"media\.cam\.color must be 'rgb' or 'gray'", media={"cam": {"color": "bw"}})


# --- frame arrays that are not (T, H, W[, C]) each get their own message (issue 25) ---------


def _depth_row_2(folder: Path, array_or_bytes) -> Path:
    path = folder / "depth" / "1.npy"
    if isinstance(array_or_bytes, bytes):
        path.write_bytes(array_or_bytes)
    else:
        np.save(path, array_or_bytes)
    return path


@pytest.mark.parametrize(("content", "message"), [
    ("truncated", "cannot read as a .npy file (truncated? its header promises uint16 (20, 24, "
                  "32), 30720 bytes of data, the file holds 172)"),
    (b"PK\x03\x04 not numpy", "cannot read as a .npy file (no NPY header: not a file written "
                              "by numpy.save)"),
    (np.zeros((24, 32), np.uint16), "frame arrays are (T, H, W[, C]), got (H, W) = (24, 32): one "
                                    "frame, or a series? (the column's other rows hold frame "
                                    "arrays)"),
    (np.zeros((1, 20, 24, 32, 1), np.uint16), "frame arrays are (T, H, W[, C]) and series (T, "
     "C) or (T,), got 5-D (1, 20, 24, 32, 1) (its axes of length 1 aside it is (20, 24, 32): "
     "np.squeeze it)"),
])  # fmt: skip
def test_a_bad_frame_array_is_named_for_what_it_is(tmp_path: Path, content, message) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    path = manifest.parent / "depth" / "1.npy"
    if isinstance(content, str):  # cut the valid file short
        content = path.read_bytes()[:300]
    _depth_row_2(manifest.parent, content)
    with pytest.raises(DcatError) as caught:
        load_manifest(manifest, min_class_samples=1, frame_cache=tmp_path / "c")
    assert str(caught.value) == f"{manifest}, row 2, column 'depth': {path}: {message}"


def test_a_stated_video_column_of_2d_arrays_is_named(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    for i in range(2):
        np.save(manifest.parent / "depth" / f"{i}.npy", np.zeros((24, 32), np.uint16))
    _expect(manifest, r"row 1, column 'depth': .*0\.npy: frame arrays are \(T, H, W\[, C\]\), "
            r"got \(H, W\) = \(24, 32\)", min_class_samples=1, frame_cache=tmp_path / "c",
            media={"depth": {"kind": "video"}})  # fmt: skip


def test_a_clip_saved_as_height_width_time_says_which_axis_is_time(tmp_path: Path) -> None:
    manifest = make_segmented_media(tmp_path, samples=2)
    path = _depth_row_2(manifest.parent, np.moveaxis(depth_frames(20), 0, -1))  # (24, 32, 20)
    with pytest.raises(DcatError) as caught:
        load_manifest(manifest, min_class_samples=1, frame_cache=tmp_path / "c")
    assert str(caught.value) == (
        f"{manifest}, row 2: modalities cover different durations (cam 2 s, pics 2 s, depth "
        f"2.4 s, mic 2 s, imu 2 s), more than 10% apart; depth: {path} has shape (24, 32, 20), "
        "and its axis 2 (20 steps, 2 s at 10 Hz) looks like time: it seems saved as (H, W, T); "
        "save it as (T, H, W) (np.moveaxis(array, 2, 0))"
    )


def test_frame_sizes_that_are_a_turned_clip_say_so() -> None:
    from dcat.data.manifest_media import MediaSpec, Source, check_sources

    def error(message: str, row: int, column: str) -> DcatError:
        return DcatError(f"row {row}, column {column!r}: {message}")

    usual = Source(1, Path("d/0.npy"), "array", 10.0, 2.0, 24, 32)  # (20, 24, 32)
    turned = Source(2, Path("d/1.npy"), "array", 10.0, 2.4, 32, 20)  # (24, 32, 20) read as T, H, W
    for first, other in ((usual, turned), (turned, usual)):
        with pytest.raises(DcatError) as caught:
            check_sources(error, "depth", "video", MediaSpec(), [first, other])
        assert str(caught.value).endswith(
            "(mixed frame sizes within one sensor; convert the recordings to one size); "
            "d/1.npy looks saved as (H, W, T): its last axis (20) looks like time; save frames "
            "as (T, H, W[, C]) (np.moveaxis(array, -1, 0))"
        )
    other_size = Source(2, Path("d/2.npy"), "array", 10.0, 2.0, 48, 64)
    with pytest.raises(DcatError, match=r"convert the recordings to one size\)$"):
        check_sources(error, "depth", "video", MediaSpec(), [usual, other_size])


# --- real data: AVLetters lips as an image-sequence modality ---------------------------------


@pytest.mark.data
def test_real_avletters_lips_as_png_folders(tmp_path: Path) -> None:
    from PIL import Image

    from dcat.data.avletters import read_htk, read_lips

    root = shared_dataset("avletters")
    files = sorted((root / "Lips").glob("[AB][12]_Anya-lips.mat"))
    files += sorted((root / "Lips").glob("[AB][12]_Yi-lips.mat"))
    assert len(files) == 8
    folder = tmp_path / "lips_manifest"
    rows, sources = [], []
    for path in files:
        stem = path.name.removesuffix("-lips.mat")
        video = read_lips(path)
        sources.append(video)
        frames_dir = folder / "lips" / stem
        frames_dir.mkdir(parents=True)
        for t, frame in enumerate(video):
            Image.fromarray(frame).save(frames_dir / f"{t:03d}.png")
        mfcc, _period = read_htk(root / "Audio" / "mfcc" / "Clean" / f"{stem}.mfcc")
        (folder / "mfcc").mkdir(exist_ok=True)
        np.save(folder / "mfcc" / f"{stem}.npy", mfcc)
        rows.append([stem.split("_")[1], stem[0], f"lips/{stem}", 25, f"mfcc/{stem}.npy", 50])
    manifest = write_table(
        folder / "manifest.csv", ["subject", "label", "lips", "lips_hz", "mfcc", "mfcc_hz"], rows
    )
    data = load_manifest(manifest, frame_cache=tmp_path / "cache",
                         media={"lips": {"frames": 8}}, min_class_samples=1)  # fmt: skip
    assert data.shape("lips") == (8, 1, 60, 80) and data.stream("lips").kind == "video"
    assert sorted(data.subject_names.values()) == ["Anya", "Yi"]
    for i, video in enumerate(sources):
        count = len(video)
        shown = np.floor((np.arange(8) + 0.5) * count / 8 + 1e-6).astype(int)
        np.testing.assert_array_equal(data.inputs["lips"].uint8(i)[:, 0], video[shown])


# --- a camera → IMU experiment from the manifest, then export and predict on the media --------

SMALL_VIDEO = {"depth": 18, "d_model": 16}


@pytest.fixture(scope="module")
def media_experiment(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import yaml

    from dcat.cli import main

    root = tmp_path_factory.mktemp("media_experiment")
    manifest = make_segmented_media(root, samples=12)  # subjects p1 … p6, two classes each
    config = {
        "name": "cam_to_imu",
        "data": {
            "dataset": "manifest",
            "root": str(manifest),
            "options": {
                "frame_cache": str(root / "frames"),
                "media": {"cam": {"frames": 4, "color": "gray"}, "depth": {"frames": 4}},
            },
        },
        "modalities": {
            "cam": {"options": SMALL_VIDEO},  # no encoder: the video default
            "depth": {"options": SMALL_VIDEO},
            "mic": {
                "options": {"n_fft": 256, "hop_length": 128, "n_mels": 32, "widths": [8, 16, 16]}
            },
            "imu": {"encoder": "imu", "options": {"widths": [8, 16, 16]}},
        },
        "splits": [
            {
                "kind": "ood",
                "train_subjects": ["p1", "p2", "p3", "p4"],
                "test_subjects": ["p5", "p6"],
            }
        ],
        "seeds": [0],
        "transfers": [{"source": "cam", "target": "imu"}, {"source": "depth", "target": "mic"}],
        "methods": ["dcat"],
        "lambdas": [1.0],
        "d_out": 16,
        "reference": False,
        "train": {"max_epochs": 1, "batch_size": 4},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out = root / "out"
    assert main(["experiment", str(path), "--out", str(out)]) == 0
    return {"root": root, "manifest": manifest, "out": out}


def _run_of(out: Path, modality: str, method: str = "baseline") -> Path:
    import json

    records = json.loads((out / "results.json").read_text())
    record = next(r for r in records if r["target"] == modality and r["method"] == method)
    return out / record["run"]


@pytest.mark.slow
def test_camera_to_imu_experiment_runs_from_the_manifest(media_experiment: dict) -> None:
    import json

    out = media_experiment["out"]
    records = json.loads((out / "results.json").read_text())
    trained = sorted((r["target"], r["method"]) for r in records)
    assert ("imu", "dcat") in trained and ("mic", "dcat") in trained
    assert {("cam", "baseline"), ("depth", "baseline"), ("imu", "baseline")} <= set(trained)
    split = json.loads((out / "splits" / "ood_seed0.json").read_text())
    assert split["test_subjects"] == ["p5", "p6"] and len(split["test"]) == 4
    card = json.loads((_run_of(out, "cam") / "model_card.json").read_text())
    assert card["kind"] == "video" and card["input"]["shape"] == [4, 1, *SIZE]
    assert card["frame"]["color"] == "gray" and card["frame"]["height"] == SIZE[0]
    assert card["architecture"]["encoder"] == "video"
    mic = json.loads((_run_of(out, "mic") / "model_card.json").read_text())
    assert mic["kind"] == "audio" and mic["audio"]["sample_rate_hz"] == RATE
    assert mic["architecture"]["encoder"] == "audio"
    assert mic["architecture"]["encoder_options"]["sample_rate"] == RATE
    depth = json.loads((_run_of(out, "depth") / "model_card.json").read_text())
    assert depth["frame"]["value_range"] == [1000.0, 2900.0]


def _predict(model: Path, recording: Path, *extra: str) -> list[dict]:
    import json

    from dcat.cli import main

    out = recording.parent / f"{recording.name}.jsonl"
    assert main(["predict", str(model), str(recording), "--out", str(out), *extra]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.slow
def test_export_and_predict_video_images_depth_and_audio_models(
    media_experiment: dict, tmp_path: Path
) -> None:
    import torch

    from dcat.cli import main
    from dcat.deploy.export import DeployedNet, load_trained
    from dcat.io.normalization import normalize

    out = media_experiment["out"]
    exported = {}
    for modality in ("cam", "depth", "mic"):
        target = tmp_path / f"export_{modality}"
        assert main(["export", str(_run_of(out, modality)), "--out", str(target)]) == 0
        exported[modality] = target
    # a 3 s recording of each kind; the video models' window is 4 frames at 2 fps (2 s)
    write_video(tmp_path / "cam.mp4", 30)
    write_png_folder(tmp_path / "pics", 30)
    np.save(tmp_path / "depth.npy", depth_frames(30))
    sf.write(tmp_path / "mic.wav", tone(3.0), RATE)

    def expected(modality: str, windows: np.ndarray) -> np.ndarray:
        net, _, _ = load_trained(_run_of(out, modality))
        with torch.no_grad():
            logits = DeployedNet(net)(torch.from_numpy(windows.astype(np.float32)))
        return torch.softmax(logits.double(), 1).numpy()

    def probabilities(lines: list[dict]) -> np.ndarray:
        return np.array([[line["probabilities"][c] for c in ("clap", "wave")] for line in lines])

    # cam at 2 fps: sample k at (k + 0.5) / 2 s shows frame 5k + 2 (as in training)
    grey = np.array([level(5 * k + 2) for k in range(6)], np.float32) / 255
    frames = np.broadcast_to(grey[:, None, None, None], (6, 1, *SIZE))
    video_lines = _predict(exported["cam"], tmp_path / "cam.mp4", "--stride", "0.5")
    assert [line["start_s"] for line in video_lines] == [0.0, 0.5, 1.0]
    windows = np.stack([frames[s : s + 4] for s in (0, 1, 2)])
    np.testing.assert_allclose(probabilities(video_lines), expected("cam", windows), atol=0.02)
    image_lines = _predict(exported["cam"], tmp_path / "pics", "--rate", "10", "--resample",
                           "--stride", "0.5")  # fmt: skip
    np.testing.assert_allclose(probabilities(image_lines), expected("cam", windows), atol=1e-5)
    # depth: the training value range (1000–2900 mm) maps 1000 + 100 (5k + 2) mm to 8 bits,
    # deeper than the training frames saturating at 255
    millimetres = np.array([5 * k + 2 for k in range(6)]) * 100
    depth = np.clip(np.rint(millimetres * 255 / 1900), 0, 255) / 255
    frames = np.broadcast_to(depth[:, None, None, None].astype(np.float32), (6, 1, *SIZE))
    # no --rate: read at the recordings' 10 fps its card records, picked onto its 2 fps grid
    depth_lines = _predict(exported["depth"], tmp_path / "depth.npy", "--stride", "0.5")
    assert depth_lines == _predict(exported["depth"], tmp_path / "depth.npy", "--rate", "10",
                                   "--stride", "0.5")  # fmt: skip
    windows = np.stack([frames[s : s + 4] for s in (0, 1, 2)])
    np.testing.assert_allclose(probabilities(depth_lines), expected("depth", windows), atol=1e-5)
    # audio: 2 s windows of the raw samples, normalised with the training statistics
    audio_lines = _predict(exported["mic"], tmp_path / "mic.wav", "--stride", "0.5")
    assert [line["start_s"] for line in audio_lines] == [0.0, 0.5, 1.0]
    _net, card, _ = load_trained(_run_of(out, "mic"))
    wave = tone(3.0)[:, 0]
    windows = np.stack([wave[s : s + 2 * RATE][None] for s in (0, 4000, 8000)])
    norm = card.normalization
    normed = normalize(windows, norm["shift"], norm["scale"]) if norm else windows
    np.testing.assert_allclose(probabilities(audio_lines), expected("mic", normed), atol=1e-5)
