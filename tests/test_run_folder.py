"""The run folder owns its file names: one module spells them; the engine writes what it reads."""

from __future__ import annotations

import ast
from pathlib import Path

from dcat.training.run_folder import SOURCE_PREFIX, TARGET_PREFIX, RunFolder, target_weights

SRC = Path(__file__).parents[1] / "src" / "dcat"
NAMES = ("metrics.json", "best.ckpt", "last.ckpt", TARGET_PREFIX, SOURCE_PREFIX)


def test_the_files_of_a_run_folder(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    assert folder.best == tmp_path / "run" / "checkpoints" / "best.ckpt"
    assert folder.last == tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert not folder.finished() and not folder.has_state()
    folder.checkpoints.mkdir(parents=True)
    assert not folder.has_state()
    folder.last.write_bytes(b"")  # an interrupted model
    assert folder.has_state() and not folder.finished()
    folder.last.unlink()
    folder.checkpoints.rmdir()
    folder.write_metrics({"val": {"f1": 0.5}, "test": {}})
    assert folder.finished() and folder.read_metrics() == {"val": {"f1": 0.5}, "test": {}}
    assert sorted(p.name for p in folder.path.iterdir()) == ["metrics.json"]  # no temp file left


def test_only_the_run_folder_module_spells_its_file_names_in_code() -> None:
    # string constants in code (docstrings, which explain the layout to readers, excepted)
    spelled: dict[str, set[str]] = {name: set() for name in NAMES}
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docstrings:
                    continue
                for name in NAMES:
                    if name in node.value:
                        spelled[name].add(path.relative_to(SRC).as_posix())
    assert spelled == {name: {"training/run_folder.py"} for name in NAMES}


def test_a_fit_writes_where_the_run_folder_reads(tmp_path: Path) -> None:
    import lightning as L

    from dcat.training.engine import TrainConfig, fit
    from dcat.training.tasks import UnimodalTask

    from conftest import make_paired, small_net

    L.seed_everything(0)
    data = make_paired()
    config = TrainConfig(max_epochs=1, batch_size=8, progress=False, accelerator="cpu")
    result = fit(UnimodalTask(small_net("imu"), "imu"), data, data, config, tmp_path / "run")
    folder = RunFolder(tmp_path / "run")
    assert folder.finished() and folder.best.is_file() and folder.last.is_file()
    assert (result.best_checkpoint, result.last_checkpoint) == (folder.best, folder.last)
    assert folder.read_metrics()["val"]["f1"] == result.val["f1"]
    import torch

    assert folder.threads() == torch.get_num_threads()  # what it trained with, recorded
    assert RunFolder(tmp_path / "none").threads() is None  # no config.yaml: an unknown count
    (tmp_path / "old").mkdir()
    RunFolder(tmp_path / "old").config.write_text("train: {}\n")  # before threads were recorded
    assert RunFolder(tmp_path / "old").threads() is None


def test_target_weights_drop_the_prefix_and_the_sources() -> None:
    state = {f"{TARGET_PREFIX}head.weight": 1, f"{SOURCE_PREFIX}skeleton.w": 2, "other": 3}
    assert target_weights(state) == {"head.weight": 1}
