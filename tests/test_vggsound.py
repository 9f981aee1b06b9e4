"""The VGGSound reader (dcat.data.vggsound) on a generated replica of a downloaded subset."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from dcat.data.frame_store import FrameStore
from dcat.data.vggsound import load_vggsound, read_vggsound_csv

SR = 8000  # the replica's audio rate; loaded with audio_rate=SR
SMALL = {"frames": 3, "size": (16, 16), "audio_rate": SR, "audio_s": 1.0}
CLASSES = ["dog barking", "bird chirping, tweeting"]

CSV = """\
abcdefghij0,30,dog barking,train
-bcdefghij1,0,dog barking,test
b_cdefghij2,5,"bird chirping, tweeting",train
zzzzzzzzzzz,1,cat purring,train
missing0000,10,dog barking,train
emptyfile00,3,dog barking,test
noaudio0000,7,"bird chirping, tweeting",test
"""


def write_mp4(path: Path, level: int, *, tone_hz: float | None = None, seconds: float = 1.5):
    """A 32 × 32 grey clip at 10 fps (mpeg4), with an AAC sine track when ``tone_hz`` is set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        if tone_hz is not None:
            audio = container.add_stream("aac", rate=SR)
            audio.layout = "mono"
            n = round(seconds * SR)
            tone = (0.5 * np.sin(2 * np.pi * tone_hz * np.arange(n) / SR)).astype(np.float32)
            for i in range(0, n, 1024):
                frame = av.AudioFrame.from_ndarray(tone[None, i : i + 1024], "fltp", "mono")
                frame.sample_rate = SR
                container.mux(audio.encode(frame))
            container.mux(audio.encode())
        image = np.full((32, 32, 3), level, dtype=np.uint8)
        for _ in range(round(seconds * 10)):
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())


def write_wav(path: Path, value: float, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(round(seconds * SR), value), SR, subtype="FLOAT")


def make_replica(tmp_path: Path) -> Path:
    base = tmp_path / "vggsound"
    base.mkdir()
    (base / "vggsound.csv").write_text(CSV)
    # official naming, audio pre-extracted into audio/
    write_mp4(base / "video" / "abcdefghij0_000030.mp4", 40)
    write_wav(base / "audio" / "abcdefghij0_000030.wav", 0.25, 1.0)
    # <ytid>_<start>_<end> naming in a split sub-folder, no WAV: the MP4's track is decoded
    write_mp4(base / "video" / "test" / "-bcdefghij1_000000_000010.mp4", 80, tone_hz=440)
    # WAV beside the video, 0.25 s long: tiled to 1 s
    write_mp4(base / "video" / "b_cdefghij2_000005.mp4", 120)
    sf.write(base / "video" / "b_cdefghij2_000005.wav", np.linspace(0, 1, 2000), SR)
    write_mp4(base / "video" / "zzzzzzzzzzz_000001.mp4", 160)  # a class not asked for
    (base / "video" / "emptyfile00_000003.mp4").touch()  # an interrupted download
    write_mp4(base / "video" / "noaudio0000_000007.mp4", 200)  # no WAV, no audio track
    return base


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_replica(tmp_path)


def _load(root: Path, **options):
    with pytest.warns(UserWarning, match=r"VGGSound: skipped 3 of 6 clips"):
        return load_vggsound(
            root, frame_cache=root.parent / "frames", classes=CLASSES, **SMALL, **options
        )


def test_read_csv_handles_quotes_and_leading_dashes(root: Path) -> None:
    rows = read_vggsound_csv(root / "vggsound.csv")
    assert len(rows) == 7
    assert rows[1].ytid == "-bcdefghij1" and rows[1].stem == "-bcdefghij1_000000"
    assert rows[2].label == "bird chirping, tweeting" and rows[2].start_s == 5
    assert rows[0].split == "train" and rows[0].stem == "abcdefghij0_000030"


def test_clips_labels_and_skipped_counts(root: Path) -> None:
    dataset = _load(root)
    assert dataset.recordings == ["abcdefghij0_000030", "-bcdefghij1_000000", "b_cdefghij2_000005"]
    assert dataset.labels.tolist() == [0, 0, 1]
    assert dataset.class_names == CLASSES
    assert dataset.name == "vggsound"
    assert dataset.subjects.tolist() == [0, 0, 0]
    assert dataset.skipped == {"missing": 1, "unreadable": 1, "no_audio": 1}
    assert dataset.skipped_clips == {
        "missing": ["missing0000_000010"],
        "unreadable": ["emptyfile00_000003"],
        "no_audio": ["noaudio0000_000007"],
    }
    assert isinstance(dataset.inputs["video"], FrameStore)
    assert dataset.shape("video") == (3, 3, 16, 16)
    assert dataset.shape("audio") == (1, SR)
    for i, level in enumerate([40, 80, 120]):
        assert abs(float(dataset[i]["inputs"]["video"].mean()) * 255 - level) < 3


def test_audio_from_wav_track_and_tiling(root: Path) -> None:
    audio = _load(root).inputs["audio"][:, 0]
    np.testing.assert_allclose(audio[0], 0.25)  # the pre-extracted WAV
    # decoded AAC track: a 0.5-amplitude sine has RMS ≈ 0.35
    assert 0.25 < float(np.sqrt(np.mean(audio[1] ** 2))) < 0.45
    ramp = np.linspace(0, 1, 2000, dtype=np.float32)
    np.testing.assert_allclose(audio[2], np.tile(ramp, 4), atol=1e-4)  # 0.25 s tiled to 1 s


def test_split_filter_and_subjects_by_video(root: Path) -> None:
    with pytest.warns(UserWarning, match=r"skipped 1 of 3 clips"):
        train = load_vggsound(
            root, frame_cache=root.parent / "frames", classes=CLASSES, split="train",
            subjects="video", **SMALL,
        )  # fmt: skip
    assert train.recordings == ["abcdefghij0_000030", "b_cdefghij2_000005"]
    assert train.subjects.tolist() == [0, 1]
    assert train.subject_names == {0: "abcdefghij0", 1: "b_cdefghij2"}
    assert train.group == "video"  # the report heads the OOD split "video-disjoint"


def test_class_order_follows_the_argument(root: Path) -> None:
    with pytest.warns(UserWarning):
        dataset = load_vggsound(
            root, frame_cache=root.parent / "frames", classes=CLASSES[::-1], **SMALL
        )
    assert dataset.labels.tolist() == [1, 1, 0]
    assert dataset.group == "subject"


def test_frame_cache_is_reused(root: Path) -> None:
    first = _load(root).inputs["video"]
    second = _load(root).inputs["video"]
    assert first.folder == second.folder


# --- errors ---------------------------------------------------------------------------------


def test_unknown_label(root: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown label 'dog barkin' .*did you mean"):
        load_vggsound(root, frame_cache=root / "f", classes=["dog barkin"], **SMALL)


def test_malformed_rows(root: Path) -> None:
    path = root / "vggsound.csv"
    path.write_text("abcdefghij0,30,dog barking,train\nabcdefghij0,30,dog, barking,train\n")
    with pytest.raises(ValueError, match=r"vggsound\.csv: row 2: expected 4 fields"):
        load_vggsound(root, frame_cache=root / "f", classes=["dog barking"], **SMALL)
    path.write_text("abcdefghij0,3.5,dog barking,train\n")
    with pytest.raises(ValueError, match=r"row 1, field 'start_seconds'.*'3\.5'"):
        load_vggsound(root, frame_cache=root / "f", classes=["dog barking"], **SMALL)
    path.write_text("abcdefghij0,30,dog barking,validation\n")
    with pytest.raises(ValueError, match=r"row 1, field 'split'.*'validation'"):
        load_vggsound(root, frame_cache=root / "f", classes=["dog barking"], **SMALL)


def test_missing_index_and_bad_options(root: Path) -> None:
    with pytest.raises(ValueError, match=r"VGGSound index .*vggsound\.csv not found"):
        load_vggsound(root / "video", frame_cache=root / "f", classes=CLASSES)
    with pytest.raises(ValueError, match=r"split must be 'train', 'test' or None"):
        load_vggsound(root, frame_cache=root / "f", classes=CLASSES, split="val")
    with pytest.raises(ValueError, match=r"classes must be a non-empty sequence"):
        load_vggsound(root, frame_cache=root / "f", classes="dog barking")


def test_no_usable_clip(root: Path) -> None:
    (root / "vggsound.csv").write_text("missing0000,10,dog barking,train\n")
    with (
        pytest.warns(UserWarning, match=r"skipped 1 of 1"),
        pytest.raises(ValueError, match=r"none of the 1 selected clips is usable"),
    ):
        load_vggsound(root, frame_cache=root / "f", classes=["dog barking"], **SMALL)
