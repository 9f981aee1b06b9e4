"""Frame caches: a smaller size or fewer frames derived from a store on disk instead of
decoded again, and ``dcat cache list|clear`` (issue 25, "Media on a CPU")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcat.cli import main
from dcat.data import frame_store
from dcat.data.frame_store import FrameClip, FrameStore, derived_indices
from dcat.io.frames import resize_frames

RATE = 15.0
RANGE = (0.0, 4000.0)


@pytest.fixture
def depth_clips(tmp_path: Path) -> list[FrameClip]:
    """Three depth recordings, 2 s at 15 Hz, 48 × 64 millimetres, each frame distinct."""
    rng = np.random.default_rng(0)
    clips = []
    for i in range(3):
        frames = rng.integers(0, 4000, size=(30, 48, 64)).astype(np.uint16)
        frames[:, 0, 0] = np.arange(30) * 100  # a frame's number, readable after scaling
        path = tmp_path / f"depth{i}.npy"
        np.save(path, frames)
        clips.append(FrameClip(path, RATE, value_range=RANGE))
    return clips


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Paths of the frame arrays read (decoded) by FrameStore.build."""
    calls: list[Path] = []
    original = frame_store.read_frame_array

    def counting(path, **kwargs):
        calls.append(Path(path))
        return original(path, **kwargs)

    monkeypatch.setattr(frame_store, "read_frame_array", counting)
    return calls


def test_derived_indices_pick_the_nearest_stored_sample() -> None:
    assert derived_indices(15, 5).tolist() == [1, 4, 7, 10, 13]  # odd ratio: exact
    assert derived_indices(16, 8).tolist() == [0, 2, 4, 6, 8, 10, 12, 14]  # tie: the earlier
    assert derived_indices(16, 16).tolist() == list(range(16))
    assert derived_indices(16, 1).tolist() == [7]
    assert derived_indices(10, 4).tolist() == [1, 3, 6, 8]


def test_a_smaller_size_and_fewer_frames_are_derived_not_decoded(
    tmp_path: Path, depth_clips: list[FrameClip], reads: list[Path]
) -> None:
    cache = tmp_path / "cache"
    big = FrameStore.build(depth_clips, cache, frames=15, size=(24, 32), grayscale=True)
    assert len(reads) == 3
    said: list[str] = []
    small = FrameStore.build(
        depth_clips, cache, frames=5, size=(12, 16), grayscale=True, log=said.append
    )
    assert len(reads) == 3  # nothing read again
    assert small.shape == (3, 5, 1, 12, 16)
    assert small.meta["derived_from"] == {"key": big.key, "frames": 15, "size": [24, 32]}
    assert len(said) == 1 and big.key[:12] in said[0] and "15 frames of 24×32" in said[0]
    for row in range(3):  # samples 1, 4, 7, ... of the big store, scaled with the box filter
        chosen = big.uint8(row)[[1, 4, 7, 10, 13]]
        expected = resize_frames(chosen, (12, 16), np.empty((5, 1, 12, 16), np.uint8))
        np.testing.assert_array_equal(small.uint8(row), expected)

    fresh = FrameStore.build(
        depth_clips, tmp_path / "fresh", frames=5, size=(12, 16), grayscale=True, derive=False
    )
    assert len(reads) == 6 and fresh.key != small.key  # a run's fingerprint tells them apart
    difference = np.abs(fresh.uint8(0).astype(int) - small.uint8(0).astype(int))
    # rounded to 8 bits and scaled twice: a grey level or two at most, most pixels none or one
    assert difference.max() <= 2 and difference.mean() < 1.0

    # found again, by its own key, on the next build; nothing new on disk
    again = FrameStore.build(depth_clips, cache, frames=5, size=(12, 16), grayscale=True)
    assert again.key == small.key and len(reads) == 6
    assert len(list(cache.iterdir())) == 2


def test_derivation_needs_the_same_clips_colour_and_enough_frames_and_pixels(
    tmp_path: Path, depth_clips: list[FrameClip], reads: list[Path]
) -> None:
    cache = tmp_path / "cache"
    FrameStore.build(depth_clips, cache, frames=8, size=(24, 32), grayscale=True)
    for frames, size, gray, clips in (
        (16, (24, 32), True, depth_clips),  # more frames than stored
        (8, (24, 48), True, depth_clips),  # wider than stored
        (8, (12, 16), False, depth_clips),  # colour
        (8, (12, 16), True, depth_clips[:2]),  # other clips
    ):
        before = len(reads)
        store = FrameStore.build(clips, cache, frames=frames, size=size, grayscale=gray)
        assert len(reads) > before and "derived_from" not in store.meta
    # the smallest store that suffices is the one derived from: the 16 frames of 24 × 32
    before = len(reads)
    store = FrameStore.build(depth_clips, cache, frames=4, size=(12, 16), grayscale=True)
    assert len(reads) == before and store.meta["derived_from"]["frames"] == 8
    # a derived store is never derived from again (one scaling away from a decode)
    before = len(reads)
    again = FrameStore.build(depth_clips, cache, frames=2, size=(6, 8), grayscale=True)
    assert len(reads) == before and again.meta["derived_from"]["key"] != store.key


def test_dcat_cache_lists_and_clears_stores(
    tmp_path: Path, depth_clips: list[FrameClip], capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    cache = root / ".dcat_frames"  # where the readers keep it by default
    big = FrameStore.build(depth_clips, cache, frames=6, size=(24, 32), grayscale=True)
    small = FrameStore.build(depth_clips, cache, frames=3, size=(12, 16), grayscale=True)
    debris = cache / f".{'a' * 32}.tmp-0123abcd"  # an interrupted build's temporary
    debris.mkdir()
    (debris / "frames.npy").write_bytes(b"partial")
    (cache / "notes.txt").write_text("the user's own file")

    assert main(["cache", "list", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{cache}: 2 stores, ")
    assert out[1].startswith(f"  {big.key[:12]}  3 clips × 6 frames × 1×24×32  ")
    assert out[2].startswith(f"  {small.key[:12]}  3 clips × 3 frames × 1×12×16  ")
    assert out[2].endswith(f"derived from {big.key[:12]}")

    # a key that names no store: refused, nothing removed
    assert main(["cache", "clear", str(cache), "--key", "ffff"]) == 2
    assert "key 'ffff' names no store" in capsys.readouterr().err
    assert big.folder.is_dir() and small.folder.is_dir()

    assert main(["cache", "clear", str(cache), "--key", big.key[:8]]) == 0
    assert "removed 1 stores" in capsys.readouterr().out
    assert not big.folder.exists() and small.folder.is_dir() and debris.is_dir()
    # a derived store stands alone: still readable with its parent gone
    assert FrameStore.open(small.folder).uint8(0).shape == (3, 1, 12, 16)

    assert main(["cache", "clear", str(root)]) == 0
    assert "removed 1 stores and 1 unfinished builds" in capsys.readouterr().out
    assert sorted(p.name for p in cache.iterdir()) == ["notes.txt"]
    assert main(["cache", "list", str(cache)]) == 0
    assert capsys.readouterr().out.startswith(f"{cache}: 0 stores, 0.0 MiB")


def test_dcat_cache_refuses_a_folder_that_is_no_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "report.md").write_text("# results")
    assert main(["cache", "clear", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{folder}: not a frame cache" in err and ".dcat_frames" in err
    assert (folder / "report.md").is_file()
