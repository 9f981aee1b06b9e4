"""Atomic folder writes (dcat.io.atomic) and the writers built on them; report plots that leave
matplotlib's backend alone."""

from __future__ import annotations

import json
import multiprocessing
import queue
import shutil
import struct
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest

import dcat.io.atomic as atomic
from dcat.io.atomic import atomic_folder

# ---------------------------------------------------------------------------------------------
# atomic_folder


def _write_meta(folder: Path, key: str, marker: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"key": key}))
    (folder / "marker.txt").write_text(marker or key)


def _key_is(key: str):
    return lambda folder: json.loads((folder / "meta.json").read_text())["key"] == key


def _hidden(parent: Path) -> list[str]:
    """Temporaries or folders moved aside that a writer left behind."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_success_renames_the_temporary_into_place(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "store"  # the parent is created
    with atomic_folder(target, replace="never", valid=_key_is("k")) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".store.tmp-")
        assert tmp.is_dir() and not any(tmp.iterdir())
        assert not target.exists()  # nothing visible until the commit
        _write_meta(tmp, "k")
    assert (target / "marker.txt").read_text() == "k"
    assert not tmp.exists() and _hidden(target.parent) == []


def test_an_exception_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "store"
    with (
        pytest.raises(RuntimeError, match="half way"),
        atomic_folder(target, replace="always") as tmp,
    ):
        _write_meta(tmp, "k")
        raise RuntimeError("half way")
    assert list(tmp_path.iterdir()) == []


def test_an_exception_leaves_the_old_folder_untouched(tmp_path: Path) -> None:
    target = tmp_path / "store"
    _write_meta(target, "old")
    for replace in ("always", "never"):
        with (
            pytest.raises(KeyboardInterrupt),
            atomic_folder(target, replace=replace, valid=_key_is("new")) as tmp,
        ):
            _write_meta(tmp, "new")
            raise KeyboardInterrupt
        assert (target / "marker.txt").read_text() == "old" and _hidden(tmp_path) == []


def test_an_existing_valid_folder_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "store"
    _write_meta(target, "k", marker="theirs")
    inode = target.stat().st_ino
    with atomic_folder(target, replace="never", valid=_key_is("k")) as tmp:
        _write_meta(tmp, "k", marker="ours")
    assert (target / "marker.txt").read_text() == "theirs" and target.stat().st_ino == inode
    assert _hidden(tmp_path) == []


def test_a_valid_folder_committed_while_writing_is_kept(tmp_path: Path) -> None:
    # the other writer wins between this one's checks: its rename must not be undone
    target = tmp_path / "store"
    with atomic_folder(target, replace="never", valid=_key_is("k")) as tmp:
        _write_meta(tmp, "k", marker="ours")
        _write_meta(target, "k", marker="theirs")
    assert (target / "marker.txt").read_text() == "theirs" and _hidden(tmp_path) == []


@pytest.mark.parametrize("when", ["before", "while writing"])
@pytest.mark.parametrize("stale", ["other key", "no meta.json", "unreadable meta.json", "a file"])
def test_a_stale_folder_is_moved_aside_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stale: str, when: str
) -> None:
    target = tmp_path / "store"

    def make_stale() -> None:
        if stale == "a file":
            target.write_text("debris")
        else:
            _write_meta(target, "old")
            if stale == "no meta.json":
                (target / "meta.json").unlink()
            elif stale == "unreadable meta.json":
                (target / "meta.json").write_text("{not json")

    removed: list[Path] = []
    real_rmtree = shutil.rmtree
    monkeypatch.setattr(
        atomic.shutil, "rmtree", lambda p, **kw: (removed.append(Path(p)), real_rmtree(p, **kw))
    )
    if when == "before":
        make_stale()
    with atomic_folder(target, replace="never", valid=_key_is("new")) as tmp:
        _write_meta(tmp, "new")
        if when == "while writing":
            make_stale()
    assert (target / "marker.txt").read_text() == "new"
    assert target not in removed  # renamed aside first, never removed in place
    assert _hidden(tmp_path) == []


def test_always_replaces_an_existing_folder(tmp_path: Path) -> None:
    target = tmp_path / "export"
    _write_meta(target, "k", marker="old")
    with atomic_folder(target, replace="always") as tmp:
        (tmp / "model.onnx").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["model.onnx"]
    assert _hidden(tmp_path) == []


def test_never_without_a_validity_check_refuses_an_existing_folder(tmp_path: Path) -> None:
    target = tmp_path / "export"
    _write_meta(target, "k", marker="old")
    with pytest.raises(FileExistsError) as err, atomic_folder(target, replace="never") as tmp:
        (tmp / "model.onnx").write_bytes(b"new")
    assert err.value.filename == str(target)
    assert (target / "marker.txt").read_text() == "old" and _hidden(tmp_path) == []


def test_replace_must_be_a_known_policy(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="replace must be"),
        atomic_folder(
            tmp_path / "x",
            replace="sometimes",  # type: ignore[arg-type]
        ),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# The writers: SourceCache and FrameStore


def _cache_arrays(rows: int = 96) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        rng.standard_normal((rows, 16, 32)).astype(np.float16),
        rng.standard_normal((rows, 16, 32)).astype(np.float16),
        rng.standard_normal((rows, 5)).astype(np.float32),
        rng.standard_normal((rows, 32)).astype(np.float32),
        rng.standard_normal(rows).astype(np.float32),
    ]


_RACE_KEY = "5e1f" * 16


def _assert_cache_equal(cache, arrays: list[np.ndarray]) -> None:
    from dcat.training.cache import _FIELDS

    assert len(cache) == len(arrays[2])
    for field, expected in zip(_FIELDS, arrays, strict=True):
        np.testing.assert_array_equal(np.asarray(cache._arrays[field]), expected)


def test_source_cache_save_keeps_a_valid_folder_and_replaces_a_stale_one(tmp_path: Path) -> None:
    from dcat.training.cache import SourceCache

    arrays = _cache_arrays(8)
    folder = tmp_path / _RACE_KEY[:32]
    first = SourceCache(*arrays, key=_RACE_KEY).save(folder)
    inode = (folder / "keys.npy").stat().st_ino
    again = SourceCache(*arrays, key=_RACE_KEY).save(folder)
    assert (folder / "keys.npy").stat().st_ino == inode  # kept, not rewritten
    _assert_cache_equal(again, arrays)
    _assert_cache_equal(first, arrays)  # the first view's memory maps still read
    other = [a[:4] for a in arrays]
    replaced = SourceCache(*other, key="0" * 64).save(folder)
    assert replaced.key == "0" * 64 and SourceCache.load(folder, "0" * 64).key == "0" * 64
    _assert_cache_equal(replaced, other)
    assert _hidden(tmp_path) == []


def test_frame_store_replaces_a_folder_without_meta(tmp_path: Path) -> None:
    from dcat.data.frame_store import FrameStore

    frames = np.random.default_rng(0).integers(0, 256, (3, 2, 1, 4, 5), dtype=np.uint8)
    store = FrameStore.from_array(frames, tmp_path)
    (store.folder / "meta.json").unlink()  # an interrupted copy, say: debris
    rebuilt = FrameStore.from_array(frames, tmp_path)
    assert rebuilt.folder == store.folder
    np.testing.assert_array_equal(rebuilt.uint8(2), frames[2])
    assert _hidden(tmp_path) == []


def _race_worker(cache_dir: str, rounds: int, barrier, errors) -> None:
    """One DDP-rank-like process: save the shared cache in every round, then load it."""
    try:
        from dcat.training.cache import SourceCache

        arrays = _cache_arrays()
        cache = SourceCache(*arrays, key=_RACE_KEY)
        shared = Path(cache_dir) / _RACE_KEY[:32]
        for round_ in range(rounds):
            barrier.wait(timeout=60)
            # a folder that is already there (from round 1 on) and one that is not
            for folder in (shared, Path(cache_dir) / f"fresh-{round_}"):
                _assert_cache_equal(cache.save(folder), arrays)
                for _ in range(3):
                    _assert_cache_equal(SourceCache.load(folder, _RACE_KEY), arrays)
    except BaseException:
        errors.put(traceback.format_exc())
        barrier.abort()  # release the other process instead of leaving it waiting
        raise


def test_concurrent_saves_of_one_source_cache_never_break_a_reader(tmp_path: Path) -> None:
    # DDP ranks sharing a cache_dir start together and save the same cache while the other
    # loads it; the first to finish must not have its folder deleted under the other
    from dcat.training.cache import SourceCache

    rounds = 20
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    errors = context.Queue()
    workers = [
        context.Process(target=_race_worker, args=(str(tmp_path), rounds, barrier, errors))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    reports = []
    while True:
        try:
            reports.append(errors.get(timeout=0.5))
        except queue.Empty:
            break
    for worker in workers:
        if worker.is_alive():
            worker.kill()
    assert not reports, "\n".join(reports)
    assert [w.exitcode for w in workers] == [0, 0]
    arrays = _cache_arrays()
    for folder in [tmp_path / _RACE_KEY[:32], *(tmp_path / f"fresh-{r}" for r in range(rounds))]:
        _assert_cache_equal(SourceCache.load(folder, _RACE_KEY), arrays)
    assert _hidden(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Report plots through matplotlib's Figure API

_REPORT_SCRIPT = r"""
import json, sys
from pathlib import Path

import matplotlib

matplotlib.use("svg")  # the user's choice, which writing a report must leave alone
from dcat.experiment.config import load_config
from dcat.experiment.report import write_report

out = Path(sys.argv[1])
config = load_config("utd_mhad_paper")
classes = ["wave", "clap", "throw"]


class Data:
    name, num_classes, modalities, class_names = "toy", 3, ["imu", "skeleton"], classes

    def __len__(self):
        return 30


records = []
for split in dict.fromkeys(s.kind for s in config.splits):
    for seed in config.seeds:
        for source, target in [(t.source, t.target) for t in config.transfers]:
            for method in ("baseline", "dcat"):
                run = f"runs/{split}/seed{seed}/{target}/{method}-{source}"
                (out / run).mkdir(parents=True, exist_ok=True)
                matrix = [[5, 1, 0], [1, 4, 1], [0, 2, 6]]
                (out / run / "metrics.json").write_text(
                    json.dumps({"test": {"confusion_matrix": matrix}})
                )
                score = 0.6 + 0.05 * seed + (0.1 if method == "dcat" else 0.0)
                records.append({
                    "split": split, "seed": seed, "target": target, "source": source,
                    "method": method, "lambda": config.weight, "run": run, "accuracy": score,
                    "recall": score, "precision": score, "f1": score,
                })
write_report(out, records, config, Data())
pyplot = "matplotlib.pyplot" in sys.modules  # before get_backend, which may import it
print(json.dumps({
    "backend": matplotlib.get_backend(),
    "pyplot": pyplot,
    "pngs": sorted(p.name for p in out.glob("*.png")),
}))
"""


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_writing_a_report_leaves_the_matplotlib_backend_alone(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _REPORT_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "svg"
    assert result["pyplot"] is False
    assert "f1_id.png" in result["pngs"]
    assert "confusion_id_imu_from-skeleton.png" in result["pngs"]
    # same figure sizes as before: 7 × 6.5 inches per confusion panel at 110 dpi
    assert _png_size(tmp_path / "confusion_id_imu_from-skeleton.png") == (1540, 715)
    text = (tmp_path / "report.md").read_text()
    assert "![macro F1, id](f1_id.png)" in text
