"""Deployment: the model card, `dcat export` (ONNX, torch.export, parity) and `dcat predict`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dcat.cli import main
from dcat.data import PairedDataset, StreamInfo
from dcat.deploy.export import DeployedNet, export_model, load_trained
from dcat.deploy.predict import DeployedModel, PredictError, predict, read_recording
from dcat.io.card import ModelCard
from dcat.training.engine import TrainConfig, fit
from dcat.training.tasks import UnimodalTask

from conftest import make_paired, small_net

pytest.importorskip("onnxruntime")

RATES = {"imu": 50.0, "skeleton": 25.0}  # 32 and 16 steps: 0.64 s windows for both
IMU_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def _dataset(streams: dict[str, StreamInfo] | None = None) -> PairedDataset:
    data = make_paired(n=48)
    return PairedDataset(
        data.inputs, data.labels, data.subjects, data.recordings, data.class_names,
        name="synthetic",
        streams=streams or {
            "imu": StreamInfo(RATES["imu"], IMU_CHANNELS),
            "skeleton": StreamInfo(RATES["skeleton"]),
        },
    )  # fmt: skip


def _train(modality: str, run_dir: Path, streams: dict[str, StreamInfo] | None = None) -> dict:
    torch.manual_seed(0)
    data = _dataset(streams)
    stats = data.subset(range(32)).fit_normalization("zscore")
    normed = data.normalized(stats)
    fit(
        UnimodalTask(small_net(modality), modality),
        normed.subset(range(32)),
        normed.subset(range(32, 48)),
        TrainConfig(max_epochs=2, batch_size=16, progress=False, logger="none"),
        run_dir,
        normalization=stats[modality],
    )
    return {"stats": stats[modality], "data": data}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("deploy")
    out = {}
    for modality in ("imu", "skeleton"):
        info = _train(modality, root / f"run_{modality}")
        export = export_model(
            root / f"run_{modality}",
            formats=["onnx", "torch-export"] if modality == "imu" else ["onnx"],
            log=lambda line: None,
        )
        out[modality] = {**info, "run": root / f"run_{modality}", "export": export}
    return out


def _recording(path: Path, modality: str, seconds: float = 3.0, *, seed: int = 1) -> np.ndarray:
    """A raw (T, C) recording at the model's rate, saved as .npy; returns it."""
    rng = np.random.default_rng(seed)
    channels = 6 if modality == "imu" else 12
    values = rng.normal(size=(round(seconds * RATES[modality]), channels)) + 1.0
    np.save(path, values.astype(np.float32))
    return values


def _reference(runs: dict, modality: str, values: np.ndarray, starts: list[int]) -> np.ndarray:
    """Probabilities the PyTorch network gives to windows of ``values`` at ``starts``."""
    net, card, _ = load_trained(runs[modality]["run"])
    length = card.window_samples
    windows = np.stack([values[s : s + length].T for s in starts]).astype(np.float32)
    normed = runs[modality]["stats"].apply(windows)
    with torch.no_grad():
        return torch.softmax(DeployedNet(net)(torch.from_numpy(normed)).double(), 1).numpy()


# --- model card and export -------------------------------------------------------------------


def test_export_writes_every_file_and_complete_metadata(runs: dict) -> None:
    folder = runs["imu"]["export"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "metadata.json", "model.onnx", "model.pt2", "model.safetensors",
    ]  # fmt: skip
    meta = json.loads((folder / "metadata.json").read_text())
    stats = runs["imu"]["stats"]
    assert meta["format"] == "dcat-model/1"
    assert meta["modality"] == "imu"
    assert meta["class_names"] == ["class0", "class1", "class2"]
    assert meta["input"] == {"shape": [6, 32], "dtype": "float32", "time_axis": 1}
    assert meta["window"] == {"samples": 32, "seconds": pytest.approx(0.64)}
    assert meta["rate_hz"] == 50.0
    assert meta["recording_rate_hz"] == 50.0  # windows cut at the recordings' own rate
    assert meta["channels"] == list(IMU_CHANNELS)
    assert meta["normalization"]["kind"] == "zscore"
    np.testing.assert_allclose(meta["normalization"]["shift"], stats.shift)
    np.testing.assert_allclose(meta["normalization"]["scale"], stats.scale)
    assert meta["architecture"]["encoder"] == "imu"
    assert meta["dcat_version"]
    # relative to the export folder (RUN/export): no path of the training machine
    assert meta["run"]["checkpoint"] == os.path.join("..", "checkpoints", "best.ckpt")
    assert meta["run"]["dir"] == ".."
    assert (folder / meta["run"]["checkpoint"]).resolve() == (
        runs["imu"]["run"] / "checkpoints" / "best.ckpt"
    ).resolve()
    parity = meta["export"]["parity"]
    assert parity["onnx"]["max_abs_diff"] <= 1e-4
    assert parity["torch-export"]["max_abs_diff"] <= 1e-4
    assert parity["samples"] == 16 and "held-out" in parity["inputs"]
    assert meta["export"]["files"] == {
        "onnx": "model.onnx", "torch-export": "model.pt2", "safetensors": "model.safetensors",
    }  # fmt: skip


def test_safetensors_weights_equal_the_checkpoint(runs: dict) -> None:
    from safetensors.torch import load_file

    net, _, _ = load_trained(runs["imu"]["run"])
    saved = load_file(str(runs["imu"]["export"] / "model.safetensors"))
    assert set(saved) == set(net.state_dict())
    for key, value in net.state_dict().items():
        assert torch.equal(saved[key], value), key


def test_card_round_trips_and_rejects_foreign_json(runs: dict, tmp_path: Path) -> None:
    card = ModelCard.load(runs["imu"]["run"] / "model_card.json")
    assert ModelCard.from_dict(card.to_dict()) == card
    assert (card.window_samples, card.window_seconds, card.time_axis) == (32, 0.64, 1)
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match=r"metadata\.json: not a dcat model description"):
        ModelCard.load(bad)
    bad.write_text(json.dumps({**card.to_dict(), "class_names": ["only one"]}))
    with pytest.raises(ValueError, match="need at least 2 class names"):
        ModelCard.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"metadata\.json: not valid JSON"):
        ModelCard.load(bad)


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_and_torch_export_logits_equal_pytorch(runs: dict, batch: int) -> None:
    net, card, _ = load_trained(runs["imu"]["run"])
    x = np.random.default_rng(batch).normal(size=(batch, *card.input_shape)).astype(np.float32)
    with torch.no_grad():
        expected = DeployedNet(net)(torch.from_numpy(x)).numpy()
    onnx = DeployedModel(runs["imu"]["export"])
    assert onnx.backend == "onnxruntime"
    np.testing.assert_allclose(onnx.logits(x), expected, atol=1e-4, rtol=0)
    export_dir = runs["imu"]["export"]
    program = torch.export.load(str(export_dir / "model.pt2")).module()
    with torch.no_grad():
        np.testing.assert_allclose(program(torch.from_numpy(x)).numpy(), expected, atol=1e-5)


def test_failed_parity_refuses_and_writes_nothing(
    runs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import dcat.deploy.export as export

    real = export._WRITERS["onnx"]
    monkeypatch.setitem(
        export._WRITERS, "onnx", (real[0], real[1], lambda p, x: real[2](p, x) + 1e-3)
    )
    out = tmp_path / "exported"
    code = main(["export", str(runs["imu"]["run"]), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "onnx parity check failed" in err and "> tolerance 0.0001" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary


def test_export_cli_checks_modality_and_existing_output(runs: dict, tmp_path: Path, capsys):
    run = str(runs["imu"]["run"])
    assert main(["export", run, "--modality", "skeleton", "--out", str(tmp_path / "a")]) == 2
    assert "holds a model of modality 'imu', not 'skeleton'" in capsys.readouterr().err
    out = tmp_path / "b"
    assert main(["export", run, "--modality", "imu", "--out", str(out)]) == 0
    assert (out / "model.onnx").is_file() and not (out / "model.pt2").exists()
    assert main(["export", run, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", run, "--out", str(out), "--overwrite", "--format", "torch-export"]) == 0
    assert (out / "model.pt2").is_file() and not (out / "model.onnx").exists()


class _Marker:
    """Unpickling this would create a file: proof that a checkpoint executed code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _bad_run(kind: str, tmp_path: Path, runs: dict) -> tuple[list[str], str]:
    """Arguments for `dcat export` that must fail, and the message they must print."""
    run = str(runs["imu"]["run"])
    if kind == "missing":
        return [str(tmp_path / "missing")], "missing: no such run folder or checkpoint"
    if kind == "experiment-folder":
        (tmp_path / "exp" / "runs").mkdir(parents=True)
        (tmp_path / "exp" / "results.json").write_text("[]")
        return [str(tmp_path / "exp")], "is an experiment folder with many runs; pass one run"
    if kind == "corrupt-checkpoint":
        (tmp_path / "garbage.ckpt").write_bytes(b"\x00not a checkpoint")
        return [str(tmp_path / "garbage.ckpt")], "garbage.ckpt is not a plain weights file: refused"
    if kind == "crafted-pickle":
        torch.save(
            {"state_dict": {}, "x": _Marker(str(tmp_path / "pwned"))}, tmp_path / "evil.ckpt"
        )
        return [str(tmp_path / "evil.ckpt")], "evil.ckpt is not a plain weights file: refused"
    if kind == "no-model-card":
        bare = tmp_path / "bare" / "checkpoints" / "best.ckpt"
        bare.parent.mkdir(parents=True)
        torch.save({"state_dict": {}}, bare)
        return [str(bare.parent.parent)], "holds no model description (model card)"
    if kind == "weights-do-not-fit":
        state = torch.load(runs["imu"]["run"] / "checkpoints" / "best.ckpt", weights_only=True)
        state["dcat_card"]["architecture"]["d_out"] = 8
        torch.save(state, tmp_path / "other.ckpt")
        return [str(tmp_path / "other.ckpt")], "weights do not fit the described network"
    if kind == "wrong-modality":
        return [run, "--modality", "skeleton"], "holds a model of modality 'imu', not 'skeleton'"
    if kind == "output-exists":
        (tmp_path / "o").mkdir()
        return [run], "o already exists; choose another --out or pass --overwrite"
    if kind == "bad-samples":
        np.save(tmp_path / "s.npy", np.zeros((2, 5, 32), np.float32))
        return [run, "--samples", str(tmp_path / "s.npy")], (
            "parity samples must have shape (N, 6, 32), got (2, 5, 32)"
        )
    raise AssertionError(kind)


EXPORT_ERRORS = [
    "missing", "experiment-folder", "corrupt-checkpoint", "crafted-pickle", "no-model-card",
    "weights-do-not-fit", "wrong-modality", "output-exists", "bad-samples",
]  # fmt: skip


@pytest.mark.parametrize("kind", EXPORT_ERRORS)
def test_export_bad_input(kind: str, runs: dict, tmp_path: Path, capsys) -> None:
    args, message = _bad_run(kind, tmp_path, runs)
    out = tmp_path / "o"
    existed = out.exists()
    assert main(["export", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("dcat: error: ") and "Traceback" not in err
    assert out.exists() == existed and (not existed or not any(out.iterdir()))
    assert not (tmp_path / "pwned").exists()
    assert not list(tmp_path.glob(".o.tmp-*"))


def test_export_from_a_checkpoint_file_without_its_run_folder(runs: dict, tmp_path: Path):
    lone = tmp_path / "lone.ckpt"
    lone.write_bytes((runs["imu"]["run"] / "checkpoints" / "best.ckpt").read_bytes())
    out = export_model(lone, tmp_path / "out", log=lambda line: None)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["export"]["parity"]["inputs"].startswith("random inputs")
    assert meta["modality"] == "imu"
    # a bare checkpoint beside the export: named relative to it, with no run folder
    assert meta["run"]["checkpoint"] == os.path.join("..", "lone.ckpt")
    assert meta["run"]["dir"] is None


def _strings(value: object) -> list[str]:
    """Every string in a JSON value (keys excluded)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_metadata_holds_no_absolute_path(runs: dict, tmp_path_factory) -> None:
    """metadata.json ships with the model: no path of the training machine in it (issue 25)."""
    elsewhere = tmp_path_factory.mktemp("shipped") / "imu_model"
    export_model(runs["imu"]["run"], elsewhere, log=lambda line: None)
    text = (elsewhere / "metadata.json").read_text()
    meta = json.loads(text)
    # outside the run's folder: no relative path leads back without naming the machine's tree
    assert (meta["run"]["checkpoint"], meta["run"]["dir"]) == (None, None)
    for folder in (elsewhere, runs["imu"]["export"]):
        strings = _strings(json.loads((folder / "metadata.json").read_text()))
        assert not [s for s in strings if os.path.isabs(s) or s.startswith("~")], folder
        assert str(runs["imu"]["run"].parent) not in (folder / "metadata.json").read_text()
    assert DeployedModel(elsewhere).card.run["checkpoint"] is None  # still a valid card


# --- predict -----------------------------------------------------------------------------------


def test_predict_csv_with_time_stamps_and_named_columns(runs: dict, tmp_path: Path) -> None:
    values = _recording(tmp_path / "r.npy", "imu")
    # columns shuffled and named: matched by name; a time column in seconds from t = 100
    order = [3, 0, 5, 1, 4, 2]
    path = tmp_path / "r.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", *[IMU_CHANNELS[i] for i in order]])
        for k, row in enumerate(values):
            writer.writerow([100 + k / 50.0, *row[order]])
    out = tmp_path / "p.csv"
    assert main(["predict", str(runs["imu"]["export"]), str(path), "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    # 3 s at 50 Hz = 150 steps, window 32, stride 16 (0.32 s): starts 0, 16, ..., 112
    assert len(rows) == 8
    assert float(rows[0]["start_s"]) == pytest.approx(100.0)
    assert float(rows[1]["start_s"]) == pytest.approx(100.32)
    assert float(rows[0]["end_s"]) == pytest.approx(100.64)
    probs = np.array([[float(r[f"p_class{c}"]) for c in range(3)] for r in rows])
    expected = _reference(runs, "imu", values, list(range(0, 113, 16)))
    np.testing.assert_allclose(probs, expected, atol=2e-5)
    assert [r["label"] for r in rows] == [f"class{i}" for i in expected.argmax(1)]


def test_predict_npy_to_jsonl_with_stride(runs: dict, tmp_path: Path) -> None:
    values = _recording(tmp_path / "r.npy", "imu", seconds=2.0)
    out = tmp_path / "p.jsonl"
    args = ["predict", str(runs["imu"]["export"]), str(tmp_path / "r.npy"), "--stride", "0.5"]
    assert main([*args, "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # 100 steps, stride 25 steps: starts 0, 25, 50 (75 + 32 > 100)
    assert [line["start_s"] for line in lines] == [0.0, 0.5, 1.0]
    assert lines[0]["models"] == ["imu"]
    probs = np.array([[line["probabilities"][f"class{c}"] for c in range(3)] for line in lines])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    np.testing.assert_allclose(probs, _reference(runs, "imu", values, [0, 25, 50]), atol=2e-5)


def test_predict_resamples_only_when_asked(runs: dict, tmp_path: Path, capsys) -> None:
    _recording(tmp_path / "r.npy", "imu")
    model, rec = str(runs["imu"]["export"]), str(tmp_path / "r.npy")
    assert main(["predict", model, rec, "--rate", "100"]) == 2
    assert "sampled at 100 Hz, far from the model's 50 Hz" in capsys.readouterr().err
    assert main(["predict", model, rec, "--rate", "100", "--resample"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert len(rows) == 3  # 1.5 s at 50 Hz = 75 steps: starts 0, 16, 32


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        pytest.param(
            np.zeros((100, 5)),
            ".npy",
            "has 5 channels (shape (100, 5)), the imu model expects 6",
            id="wrong-channel-count",
        ),
        pytest.param(
            np.zeros((6, 100)), ".npy", "it looks like (C, T): transpose it", id="transposed-npy"
        ),
        pytest.param(
            np.zeros((20, 6)),
            ".npy",
            "too short: 20 steps (0.4 s at 50 Hz), one window",
            id="too-short",
        ),
        pytest.param("nan", ".npy", "NaN or Inf in step 7, channel 'acc_z'", id="nan"),
        pytest.param(
            "a,b,c\n1,2,3\n",
            ".csv",
            "has 3 channel column(s) ['a', 'b', 'c'], the imu model",
            id="csv-wrong-columns",
        ),
        pytest.param(
            "time,a,b,c,d,e,f\n0,1,1,1,1,1,1\n0,1,1,1,1,1,1\n",
            ".csv",
            "must increase strictly",
            id="time-not-increasing",
        ),
        pytest.param(
            "1,2,3,4,5,x\n", ".csv", "row 1, column 6: 'x' is not a number", id="csv-bad-cell"
        ),
        pytest.param("", ".csv", "empty file", id="empty-csv"),
        pytest.param(b"RIFF\x00junk", ".npy", "not a readable .npy array", id="corrupt-npy"),
        pytest.param("data", ".xyz", "unsupported recording type .xyz", id="unsupported-type"),
    ],
)
def test_predict_bad_input_errors(runs: dict, tmp_path: Path, capsys, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif content == "nan":
        array = np.ones((100, 6))
        array[7, 2] = np.nan
        np.save(path, array)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    out = tmp_path / "out.csv"
    code = main(["predict", str(runs["imu"]["export"]), str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert str(path) in err or "bad" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_predict_missing_recording_and_model(runs: dict, tmp_path: Path, capsys) -> None:
    assert main(["predict", str(runs["imu"]["export"]), str(tmp_path / "none.csv")]) == 2
    assert "none.csv: no such recording" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), str(tmp_path / "none.csv")]) == 2
    assert "no exported model folder" in capsys.readouterr().err


def test_predict_without_torch(runs: dict, tmp_path: Path) -> None:
    """The ONNX path runs in a process where importing torch fails."""
    _recording(tmp_path / "r.npy", "imu")
    out = tmp_path / "p.csv"
    script = (
        "import sys\n"
        "sys.modules['torch'] = None  # any 'import torch' now raises ImportError\n"
        "from dcat.cli import main\n"
        f"code = main(['predict', {str(runs['imu']['export'])!r}, {str(tmp_path / 'r.npy')!r},"
        f" '--out', {str(out)!r}])\n"
        "assert sys.modules['torch'] is None, 'torch was imported'\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    expected = tmp_path / "q.csv"
    assert main(["predict", str(runs["imu"]["export"]), str(tmp_path / "r.npy"),
                 "--out", str(expected)]) == 0  # fmt: skip
    assert out.read_text() == expected.read_text()


def test_torch_free_process_really_cannot_import_torch() -> None:
    script = "import sys; sys.modules['torch'] = None\ntry:\n import torch\nexcept ImportError:\n" \
        " sys.exit(3)\n"  # fmt: skip
    assert subprocess.run([sys.executable, "-c", script]).returncode == 3


# --- several sensors ---------------------------------------------------------------------------


def test_fusion_averages_the_present_models(runs: dict, tmp_path: Path) -> None:
    imu = _recording(tmp_path / "imu.npy", "imu", seconds=2.0)
    skeleton = _recording(tmp_path / "skel.npy", "skeleton", seconds=2.0, seed=2)
    models = [DeployedModel(runs[m]["export"]) for m in ("imu", "skeleton")]
    recordings = {
        "imu": read_recording(tmp_path / "imu.npy", models[0].card),
        "skeleton": read_recording(tmp_path / "skel.npy", models[1].card),
    }
    fused = predict(models, recordings, stride_s=0.4)
    assert [p.start_s for p in fused] == pytest.approx([0.0, 0.4, 0.8, 1.2])
    assert fused[0].models == ["imu", "skeleton"]
    probs = np.array([p.probabilities for p in fused])
    expected = (
        _reference(runs, "imu", imu, [0, 20, 40, 60])
        + _reference(runs, "skeleton", skeleton, [0, 10, 20, 30])
    ) / 2
    np.testing.assert_allclose(probs, expected, atol=2e-5)


def test_fusion_aligns_windows_on_time_stamps(runs: dict, tmp_path: Path) -> None:
    """The skeleton starts 0.4 s later: windows start there, imu windows are cut to match."""
    imu = _recording(tmp_path / "imu.npy", "imu", seconds=2.0)
    skeleton = _recording(tmp_path / "skel.npy", "skeleton", seconds=1.6, seed=2)
    for name, values, rate, t0, channels in (
        ("imu.csv", imu, 50.0, 10.0, list(IMU_CHANNELS)),
        ("skel.csv", skeleton, 25.0, 10.4, [f"c{i}" for i in range(12)]),
    ):
        with open(tmp_path / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["time", *channels])
            writer.writerows([t0 + k / rate, *row] for k, row in enumerate(values))
    models = [DeployedModel(runs[m]["export"]) for m in ("imu", "skeleton")]
    recordings = {
        "imu": read_recording(tmp_path / "imu.csv", models[0].card),
        "skeleton": read_recording(tmp_path / "skel.csv", models[1].card),
    }
    fused = predict(models, recordings, stride_s=0.4)
    assert [p.start_s for p in fused] == pytest.approx([10.4, 10.8, 11.2])
    expected = (
        _reference(runs, "imu", imu, [20, 40, 60])
        + _reference(runs, "skeleton", skeleton, [0, 10, 20])
    ) / 2
    np.testing.assert_allclose(np.array([p.probabilities for p in fused]), expected, atol=2e-5)


def test_fusion_cli_drops_a_missing_sensor(runs: dict, tmp_path: Path, capsys) -> None:
    _recording(tmp_path / "imu.npy", "imu", seconds=2.0)
    imu_model, skel_model = str(runs["imu"]["export"]), str(runs["skeleton"]["export"])
    both = ["predict", imu_model, skel_model, f"imu={tmp_path / 'imu.npy'}", "--stride", "0.4"]
    assert main(both) == 0
    captured = capsys.readouterr()
    assert "no recording for skeleton (dropped)" in captured.err
    assert main(["predict", imu_model, str(tmp_path / "imu.npy"), "--stride", "0.4"]) == 0
    assert captured.out == capsys.readouterr().out  # identical to the IMU model alone
    assert main(["predict", imu_model, skel_model, str(tmp_path / "imu.npy")]) == 2
    assert "name each recording as MODALITY=PATH" in capsys.readouterr().err
    assert main(["predict", imu_model, f"audio={tmp_path / 'imu.npy'}"]) == 2
    assert "no model has that modality" in capsys.readouterr().err


def test_fusion_refuses_models_with_other_classes(runs: dict, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for name in ("model.onnx",):
        (other / name).write_bytes((runs["skeleton"]["export"] / name).read_bytes())
    meta = json.loads((runs["skeleton"]["export"] / "metadata.json").read_text())
    meta["class_names"] = ["a", "b", "c"]
    (other / "metadata.json").write_text(json.dumps(meta))
    models = [DeployedModel(runs["imu"]["export"]), DeployedModel(other)]
    _recording(tmp_path / "imu.npy", "imu")
    with pytest.raises(PredictError, match="classes differ"):
        predict(models, {"imu": read_recording(tmp_path / "imu.npy", models[0].card)})


# --- audio and video models --------------------------------------------------------------------


def _train_export(root: Path, modality: str, inputs: np.ndarray, rate: float, encoder) -> dict:
    from dcat import ModalityNet

    labels = np.arange(len(inputs)) % 2
    data = PairedDataset(
        {modality: inputs}, labels, np.arange(len(inputs)) % 2 + 1,
        [f"r{i}" for i in range(len(inputs))], ["no", "yes"],
        streams={modality: StreamInfo(rate)},
    )  # fmt: skip
    stats = data.fit_normalization()
    normed = data.normalized(stats)
    torch.manual_seed(0)
    net = ModalityNet(encoder, d_out=16, num_classes=2)
    config = TrainConfig(max_epochs=1, batch_size=4, progress=False, logger="none")
    fit(
        UnimodalTask(net, modality),
        normed,
        normed,
        config,
        root / "run",
        normalization=stats.get(modality),
    )
    export = export_model(root / "run", log=lambda line: None)
    return {"stats": stats.get(modality), "export": export, "run": root / "run"}


@pytest.mark.slow
def test_predict_wav_with_an_audio_model(tmp_path: Path, capsys) -> None:
    soundfile = pytest.importorskip("soundfile")
    from dcat import create_encoder

    rng = np.random.default_rng(0)
    encoder = create_encoder(
        "audio", 1, sample_rate=8000, n_fft=256, hop_length=128, n_mels=32, widths=[8, 16, 16]
    )
    model = _train_export(tmp_path, "audio", rng.normal(size=(8, 1, 4000)).astype(np.float32) * 0.1,
                          8000.0, encoder)  # fmt: skip
    stereo = rng.normal(size=(12000, 2)) * 0.1
    soundfile.write(tmp_path / "clip.wav", stereo, 8000, subtype="FLOAT")
    out = tmp_path / "p.jsonl"
    assert (
        main(["predict", str(model["export"]), str(tmp_path / "clip.wav"), "--out", str(out)]) == 0
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # 1.5 s, window 0.5 s, stride 0.25 s: starts 0, 0.25, ..., 1.0
    assert [line["start_s"] for line in lines] == [0.0, 0.25, 0.5, 0.75, 1.0]
    mono = stereo.astype(np.float32).mean(axis=1)
    windows = np.stack([mono[s : s + 4000][None] for s in range(0, 8001, 2000)])
    net, _, _ = load_trained(model["run"])
    normed = model["stats"].apply(windows) if model["stats"] is not None else windows
    with torch.no_grad():
        expected = torch.softmax(DeployedNet(net)(torch.from_numpy(normed)).double(), 1).numpy()
    got = np.array([[line["probabilities"][c] for c in ("no", "yes")] for line in lines])
    np.testing.assert_allclose(got, expected, atol=2e-5)
    soundfile.write(tmp_path / "fast.wav", stereo, 16000)
    assert main(["predict", str(model["export"]), str(tmp_path / "fast.wav")]) == 2
    assert "sampled at 16000 Hz, far from the model's 8000 Hz" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_mp4_with_a_video_model(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    from dcat import create_encoder
    from dcat.io.media import decode_video

    rng = np.random.default_rng(0)
    clips = rng.random((6, 4, 3, 32, 32), dtype=np.float32)
    model = _train_export(tmp_path, "video", clips, 10.0, create_encoder("video", 3, depth=18))
    assert model["stats"] is None  # frames are standardised inside the network
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for k in range(12):
            image = np.full((32, 32, 3), 20 * k, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    out = tmp_path / "p.csv"
    assert main(["predict", str(model["export"]), str(path), "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    # 12 frames at 10 fps, window 4 frames (0.4 s), stride 2 frames: starts 0, 2, 4, 6, 8
    assert [float(r["start_s"]) for r in rows] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    frames = decode_video(path, fps=10.0, size=(32, 32)).astype(np.float32) / 255
    windows = np.stack([frames[s : s + 4] for s in range(0, 9, 2)])
    net, _, _ = load_trained(model["run"])
    with torch.no_grad():
        expected = torch.softmax(DeployedNet(net)(torch.from_numpy(windows)).double(), 1).numpy()
    got = np.array([[float(r["p_no"]), float(r["p_yes"])] for r in rows])
    np.testing.assert_allclose(got, expected, atol=2e-5)


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_flag_shows_the_traceback_before_or_after_the_command(tmp_path: Path, where: str):
    args = ["export", str(tmp_path / "missing")]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        main(args)


# --- a raw recording for a model trained on resampled trials (issue 25) ---------------------

NATIVE_HZ = 50.0  # the raw recordings' own rate
TRIAL_S = 1.6  # the median trial: 32 steps over 1.6 s put the model's grid at 20 Hz


@pytest.fixture(scope="module")
def resampled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An IMU model trained on 50 Hz trials resampled to 32 steps (its grid: 20 Hz)."""
    root = tmp_path_factory.mktemp("resampled")
    stream = StreamInfo.of_trials(32, [TRIAL_S] * 48, IMU_CHANNELS, "50 Hz", native_hz=NATIVE_HZ)
    info = _train("imu", root / "run", {"imu": stream})
    export = export_model(root / "run", log=lambda line: None)
    return {**info, "run": root / "run", "export": export}


def _raw_50hz(folder: Path, seconds: float = 6.0) -> tuple[np.ndarray, dict[str, Path]]:
    """A raw 50 Hz recording ``(T, 6)`` as .npy, as a CSV without time and as one with time
    stamps from t = 100 s."""
    values = np.random.default_rng(5).normal(size=(round(seconds * NATIVE_HZ), 6)) + 1.0
    paths = {"npy": folder / "raw.npy", "csv": folder / "raw.csv", "timed": folder / "timed.csv"}
    np.save(paths["npy"], values)
    for name, times in (("csv", None), ("timed", 100 + np.arange(len(values)) / NATIVE_HZ)):
        with open(paths[name], "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(IMU_CHANNELS if times is None else ["time", *IMU_CHANNELS])
            for k, row in enumerate(values):
                writer.writerow([*row] if times is None else [times[k], *row])
    return values, paths


def _predicted(model: Path, recording: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["predict", str(model), str(recording), "--out", str(out), *extra]) == 0
    return list(csv.DictReader(io.StringIO(out.read_text())))


def test_predict_reads_a_raw_recording_at_the_recordings_rate(
    resampled: dict, tmp_path: Path
) -> None:
    from dcat.io.resample import resample_to_grid

    meta = json.loads((resampled["export"] / "metadata.json").read_text())
    assert meta["rate_hz"] == pytest.approx(20.0) and meta["recording_rate_hz"] == NATIVE_HZ
    values, paths = _raw_50hz(tmp_path)
    model = resampled["export"]
    got = {
        f"{name}{'+rate' if extra else ''}": _predicted(
            model, paths[name], tmp_path / f"{name}{len(extra)}.csv", *extra
        )
        for name in ("npy", "csv")
        for extra in ([], ["--rate", "50"])
    }
    # without --rate, the windows are those given the true rate (no --resample needed)
    assert got["npy"] == got["npy+rate"] == got["csv"] == got["csv+rate"]
    # 6 s at 50 Hz → 120 steps on the 20 Hz grid; window 32 steps (1.6 s), stride 0.8 s
    rows = got["npy"]
    assert [float(r["start_s"]) for r in rows] == pytest.approx([0.0, 0.8, 1.6, 2.4, 3.2, 4.0])
    assert float(rows[-1]["end_s"]) == pytest.approx(5.6)
    grid = resample_to_grid(np.arange(len(values)) / NATIVE_HZ, values, 20.0)
    expected = _reference({"imu": resampled}, "imu", grid, list(range(0, 81, 16)))
    probs = np.array([[float(r[f"p_class{c}"]) for c in range(3)] for r in rows])
    np.testing.assert_allclose(probs, expected, atol=2e-5)
    # time stamps at 50 Hz: read as they are, no --resample needed either
    timed = _predicted(model, paths["timed"], tmp_path / "timed.csv")
    assert [float(r["start_s"]) for r in timed] == pytest.approx(
        [100 + float(r["start_s"]) for r in rows]
    )
    assert [r["label"] for r in timed] == [r["label"] for r in rows]
    timed_probs = np.array([[float(r[f"p_class{c}"]) for c in range(3)] for r in timed])
    np.testing.assert_allclose(timed_probs, probs, atol=1e-5)


def test_predict_refuses_a_rate_far_from_the_recordings_and_the_grid(
    resampled: dict, tmp_path: Path, capsys
) -> None:
    _values, paths = _raw_50hz(tmp_path)
    model, rec = str(resampled["export"]), str(paths["npy"])
    assert main(["predict", model, rec, "--rate", "100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dcat: error: ")
    assert (
        f"{rec}: sampled at 100 Hz, far from the model's recordings (50 Hz) and its grid (20 Hz)"
        in err
    )
    assert main(["predict", model, rec, "--rate", "100", "--resample"]) == 0
    capsys.readouterr()
    # a rate at the model's grid is taken as it is (a recording already resampled)
    assert main(["predict", model, rec, "--rate", "20"]) == 0
    # 300 steps at 20 Hz = 15 s: starts 0, 0.8, ..., 12.8
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 17


def _card_variant(export: Path, folder: Path, edit) -> Path:
    """A copy of the exported model whose metadata.json went through ``edit(meta)``."""
    import shutil

    shutil.copytree(export, folder)
    meta = json.loads((folder / "metadata.json").read_text())
    edit(meta)
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def test_predict_refuses_a_file_without_rate_when_the_card_records_none(
    resampled: dict, tmp_path: Path, capsys
) -> None:
    _values, paths = _raw_50hz(tmp_path)
    unknown = _card_variant(resampled["export"], tmp_path / "unknown",
                            lambda meta: meta.update(recording_rate_hz=None))  # fmt: skip
    # a card written before recording_rate_hz: its note says the trials were resampled
    old = _card_variant(resampled["export"], tmp_path / "old",
                        lambda meta: meta.pop("recording_rate_hz"))  # fmt: skip
    assert "resampled to 32 steps" in json.loads((old / "metadata.json").read_text())["note"]
    expected = (tmp_path / "expected.csv").as_posix()
    assert main(["predict", str(resampled["export"]), str(paths["npy"]), "--out", expected]) == 0
    capsys.readouterr()
    for model in (unknown, old):
        assert ModelCard.load(model / "metadata.json").recording_rate_hz is None
        for name in ("npy", "csv"):
            out = tmp_path / f"{model.name}_{name}.csv"
            capsys.readouterr()
            assert main(["predict", str(model), str(paths[name]), "--out", str(out)]) == 2
            err = capsys.readouterr().err
            assert err == (
                f"dcat: error: {paths[name]}: holds no time stamps and the imu model's card "
                "records no recording rate (its 20 Hz is the rate after resampling); pass "
                "--rate with this recording's rate in Hz\n"
            )
            assert not out.exists()
        # the true rate, or a file that carries its own time stamps, is read as before
        rows = _predicted(model, paths["npy"], tmp_path / f"{model.name}.csv", "--rate", "50")
        assert rows == list(csv.DictReader(io.StringIO(Path(expected).read_text())))
        assert _predicted(model, paths["timed"], tmp_path / f"{model.name}_t.csv")


def test_old_cards_read_the_recording_rate_only_where_nothing_was_resampled(runs: dict) -> None:
    plain = ModelCard.load(runs["imu"]["export"] / "metadata.json").to_dict()
    plain.pop("recording_rate_hz")
    assert ModelCard.from_dict(plain).recording_rate_hz == 50.0  # as predict read it before
    trials = {**plain, "note": "trials (50 Hz) resampled to 32 steps; median trial 1.60 s"}
    assert ModelCard.from_dict(trials).recording_rate_hz is None
    video = {**plain, "kind": "video", "input": {"shape": [4, 1, 8, 8]}, "channels": None}
    assert ModelCard.from_dict(video).recording_rate_hz is None  # frames may have been picked
    with pytest.raises(ValueError, match="recording_rate_hz must be a positive number of Hz"):
        ModelCard.from_dict({**plain, "recording_rate_hz": 0})


def _depth_card(recording_rate_hz: float | None) -> ModelCard:
    """A depth model of 4 frames of 24 × 32 on a 2 fps grid (clips of 2 s at 10 fps)."""
    return ModelCard(
        modality="depth", class_names=["clap", "wave"], input_shape=[4, 1, 24, 32], rate_hz=2.0,
        channels=None, normalization=None, architecture={}, dcat_version="test", kind="video",
        value_range=[1000.0, 2900.0], recording_rate_hz=recording_rate_hz,
    )  # fmt: skip


def test_depth_frames_are_read_at_the_recordings_rate(tmp_path: Path) -> None:
    from test_manifest_media import depth_frames

    np.save(tmp_path / "depth.npy", depth_frames(30))  # 3 s at 10 fps: frame k is 1000 + 100 k
    card = _depth_card(10.0)
    plain = read_recording(tmp_path / "depth.npy", card)
    given = read_recording(tmp_path / "depth.npy", card, rate=10.0)
    assert np.array_equal(plain.values, given.values) and plain.rate_hz == given.rate_hz == 2.0
    # 6 frames on the 2 fps grid: sample k at (k + 0.5) / 2 s shows frame 5k + 2
    millimetres = (np.array([5 * k + 2 for k in range(6)]) * 100).astype(float)
    levels = np.clip(np.rint(millimetres * 255 / 1900), 0, 255) / 255
    np.testing.assert_allclose(plain.values[:, 0, 0, 0], levels, atol=1e-6)
    with pytest.raises(PredictError, match=r"depth\.npy: holds no time stamps .* pass --rate"):
        read_recording(tmp_path / "depth.npy", _depth_card(None))


def test_manifest_streams_record_the_recordings_rate(tmp_path: Path) -> None:
    from test_manifest import _rewrite, load_manifest, make_segmented, make_stream

    trials = load_manifest(make_segmented(tmp_path / "a"), steps={"imu": 32})
    imu, audio = trials.stream("imu"), trials.stream("audio")
    # imu: 100 samples at 50 Hz (median 2 s) resampled to 32 steps; audio CSVs at 20 Hz
    assert (imu.rate_hz, imu.recording_rate_hz) == (pytest.approx(16.0), 50.0)
    assert (audio.rate_hz, audio.recording_rate_hz) == (pytest.approx(20.0), pytest.approx(20.0))
    streams = make_stream(tmp_path / "b")
    data = load_manifest(streams, window_s=2.0, stride_s=1.0)
    assert data.stream("imu").recording_rate_hz == data.stream("imu").rate_hz == 50.0
    assert data.stream("audio").recording_rate_hz == pytest.approx(16.0)  # from time stamps
    # recordings at 50 and 25 Hz on one 50 Hz grid: no one rate to read a new recording at
    _rewrite(streams, edit=lambda rows: rows[1].__setitem__(4, "25"))
    mixed = load_manifest(streams, window_s=2.0, stride_s=1.0).stream("imu")
    assert (mixed.rate_hz, mixed.recording_rate_hz, mixed.resampled) == (50.0, None, True)
    # clips of 2 s at 10 fps, 4 frames each: a 2 fps grid, frames read at 10 fps
    from test_manifest_media import SEGMENTED_OPTIONS, make_segmented_media

    media = load_manifest(make_segmented_media(tmp_path / "c"), frame_cache=tmp_path / "frames",
                          **SEGMENTED_OPTIONS)  # fmt: skip
    for modality in ("depth", "pics", "cam"):
        stream = media.stream(modality)
        assert (stream.rate_hz, stream.recording_rate_hz) == (2.0, 10.0), modality
