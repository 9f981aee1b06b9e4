"""Contract tests over the registries: every encoder, transfer method and data set.

A new encoder or method registered without an entry here fails
``test_every_registered_*_has_a_contract_case``, so the contract covers it from the start.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import test_avletters
import test_cough
import test_manifest
import test_manifest_media
import test_sp_sw_har
import test_uestc_mmea
import test_utd_mhad
import test_vggsound
from dcat.data import PairedDataset
from dcat.data.registry import dataset_names, get_dataset
from dcat.io.card import ModelCard
from dcat.io.normalization import fit_normalization
from dcat.nn.encoders import create_encoder, list_encoders
from dcat.nn.model import ModalityNet
from dcat.training.engine import describe_model
from dcat.training.methods import get_method, list_methods, resolve_method
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask

# name → (in_channels, tiny options, one sample's input shape, expected sequence length)
ENCODER_CASES: dict[str, tuple[int, dict, tuple[int, ...], int]] = {
    "imu": (6, {"widths": [8, 16, 16], "kernel_sizes": [5, 3, 3]}, (6, 32), 8),
    "sequence": (4, {"d_model": 16, "depth": 2, "downsample": 2}, (4, 24), 12),
    "video": (1, {"depth": 18, "d_model": 16}, (3, 1, 32, 32), 3),
    # the small CPU video encoder (issue 25): S = F frames, whatever the frame size
    "video_small": (1, {"widths": [4, 8], "d_model": 16}, (3, 1, 20, 28), 3),
    "audio": (
        1,
        {"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 16, "widths": [8, 16]},
        (1, 2048),
        (1 + 2048 // 128) // 2,
    ),
    # skeleton encoders: a 4-joint chain (root 0), x, y, z per joint
    "skeleton_tcn": (12, {"parents": [-1, 0, 1, 2], "width": 16, "depth": 2}, (12, 16), 8),
    "skeleton_hcn": (12, {"parents": [-1, 0, 1, 2], "width": 32}, (12, 16), 2),
    "skeleton": (12, {"parents": [-1, 0, 1, 2], "width": 16}, (12, 16), 8),  # the default (tcn)
}


def test_every_registered_encoder_has_a_contract_case() -> None:
    assert set(ENCODER_CASES) == set(list_encoders())


def _net(name: str, classes: int = 3, d_out: int = 16) -> ModalityNet:
    channels, options, _, _ = ENCODER_CASES[name]
    torch.manual_seed(0)
    encoder = create_encoder(name, channels, **options)
    return ModalityNet(encoder, d_out=d_out, num_classes=classes).eval()


@pytest.mark.parametrize("name", sorted(ENCODER_CASES))
def test_encoder_builds_and_maps_input_to_a_sequence(name: str) -> None:
    channels, options, shape, length = ENCODER_CASES[name]
    encoder = create_encoder(name, channels, **options).eval()
    out = encoder(torch.randn(2, *shape))
    assert out.shape == (2, length, encoder.d_model)
    net = _net(name)
    result = net.forward_all(torch.randn(2, *shape))
    assert result.logits.shape == (2, 3)
    assert result.embedding.shape == (2, 16)
    assert all(t.shape == (2, length, 16) for t in result.kqv)


@pytest.mark.parametrize("name", sorted(ENCODER_CASES))
def test_encoder_architecture_round_trip(name: str) -> None:
    net = _net(name)
    rebuilt = ModalityNet.from_architecture(net.architecture()).eval()
    assert rebuilt.architecture() == net.architecture()
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(2, *ENCODER_CASES[name][2])
    torch.testing.assert_close(rebuilt(x)[0], net(x)[0])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ENCODER_CASES))
def test_encoder_exports_to_onnx(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from dcat.deploy.export import DeployedNet, _onnx, _onnx_logits

    model = DeployedNet(_net(name)).eval()
    x = torch.randn(3, *ENCODER_CASES[name][2])
    _onnx(model, x[:2], tmp_path / "model.onnx")  # as export_model does: no 0/1 specialisation
    with torch.no_grad():
        reference = model(x).numpy()
    np.testing.assert_allclose(_onnx_logits(tmp_path / "model.onnx", x.numpy()), reference,
                               atol=1e-4, rtol=1e-4)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Methods: name → the components their output dict must hold (beyond loss, logits and ce)

METHOD_KEYS: dict[str, set[str]] = {
    "dcat": {"ca", "ca/src", "mcma_frac/src"},
    "logit_kd": {"kd", "kd/src"},
    "feature": {"feat", "feat/src"},
    "contrastive": {"nce", "nce/src"},
    "dkd": {"dkd", "dkd/src"},
    "rkd": {"rkd", "rkd/src"},
    "sp": {"sp", "sp/src"},
    "virtual": {"virt", "virt/src", "virt_ce/src"},
    "pseudo_label": {"pl", "pl/src", "pl_frac/src"},
}


def test_every_registered_method_has_a_contract_case() -> None:
    assert set(METHOD_KEYS) == set(list_methods())


def _batch(n: int = 8) -> dict:
    torch.manual_seed(1)
    return {
        "inputs": {
            "imu": torch.randn(n, 6, 32),
            "seq": torch.randn(n, 4, 24),
            "imu_virtual": torch.randn(n, 6, 32),  # samples of the target's shape (virtual)
        },
        "label": torch.arange(n) % 3,
        "index": torch.arange(n),
    }


@pytest.mark.parametrize("method", sorted(METHOD_KEYS))
def test_method_loss_dict_gradients_and_frozen_source(method: str) -> None:
    source, target = _net("sequence"), _net("imu")
    source_state = {k: v.clone() for k, v in source.state_dict().items()}
    if get_method(method).source_network:
        spec = SourceSpec("src", source, modality="seq", method=method)
    else:  # it learns from the source modality's samples: no network to freeze
        spec = SourceSpec("src", None, modality="imu_virtual", method=method)
    task = TransferTask(target, "imu", [spec])
    task.train()
    out = task(_batch())
    assert set(out) == {"loss", "logits", "ce", *METHOD_KEYS[method]}
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    comp = get_method(method).component
    torch.testing.assert_close(out["loss"], out["ce"] + out[comp])
    out["loss"].backward()
    # gradient reaches the target and the method's own heads, never the source
    if spec.model is not None:
        assert all(p.grad is None for p in source.parameters())
        assert all(not p.requires_grad for p in source.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in target.parameters())
    heads = list(task.methods["src"].parameters())
    assert {id(p) for p in task.trainable_parameters()} == {
        id(p) for p in [*target.parameters(), *heads]
    }
    optimizer = torch.optim.SGD(task.trainable_parameters(), lr=0.1)
    optimizer.step()
    assert not source.training or spec.model is None
    for key, value in source.state_dict().items():
        assert torch.equal(value, source_state[key]), key


@pytest.mark.parametrize("method", sorted(METHOD_KEYS))
def test_method_options_resolve_with_defaults(method: str) -> None:
    cls = get_method(method)
    variant = resolve_method(method)
    assert variant.tag == method and variant.label == cls.label
    assert variant.option_dict == dict(cls.options)


def test_method_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['temprature'\].*did you mean"):
        resolve_method({"name": "contrastive", "temprature": 0.2})
    with pytest.raises(ValueError, match=r"mcma must be one of \['correct', 'confident', 'none'\]"):
        resolve_method({"name": "dcat", "mcma": "no"})
    with pytest.raises(ValueError, match="option 'mcma' of method 'dcat' must be str, got 3"):
        resolve_method({"name": "dcat", "mcma": 3})
    with pytest.raises(ValueError, match="temperature must be positive"):
        resolve_method({"name": "logit_kd", "temperature": 0})
    with pytest.raises(ValueError, match=r"unknown \['mixup'\]; choose from \['dcat', "):
        resolve_method("mixup")


def test_method_variants_name_runs_and_labels() -> None:
    assert resolve_method("dcat_no_mcma").tag == "dcat_no_mcma"
    assert resolve_method({"name": "dcat", "mcma": False}).label == "No MCMA"
    variant = resolve_method({"name": "contrastive", "temperature": 0.2})
    assert (variant.tag, variant.label) == (
        "contrastive_temperature0.2",
        "Contrastive (temperature=0.2)",
    )
    assert variant.option_dict == {"temperature": 0.2, "projection_dim": 128}


def test_method_option_reaches_the_loss() -> None:
    """A temperature set through the options changes the contrastive loss as the formula says."""
    from dcat.nn.peer_losses import contrastive_loss

    source, target = _net("sequence"), _net("imu")
    spec = SourceSpec("src", source, modality="seq", method="contrastive",
                      options={"temperature": 0.5, "projection_dim": 8})  # fmt: skip
    task = TransferTask(target, "imu", [spec])
    batch = _batch()
    out = task(batch)
    heads = task.methods["src"].heads
    s = source.forward_all(batch["inputs"]["seq"]).embedding
    t = target.forward_all(batch["inputs"]["imu"]).embedding
    expected = contrastive_loss(heads["source"](s), heads["target"](t), 0.5)
    torch.testing.assert_close(out["nce/src"], expected)
    assert heads["target"].out_features == 8


# name → (builds a replica of the release's layout under tmp_path → data.root, tiny options)
DATASET_CASES: dict[str, tuple[object, dict]] = {
    "utd_mhad_embedded": (None, {"subjects": [1, 2]}),
    "utd_mhad": (test_utd_mhad.make_replica, {"steps": {"imu": 32, "skeleton": 16}}),
    "sp_sw_har": (test_sp_sw_har.make_replica, {}),
    "avletters": (test_avletters.make_replica, {"frames": 4, "mfcc_steps": 8}),
    "uestc_mmea": (test_uestc_mmea.make_replica, dict(test_uestc_mmea.SMALL)),
    "cough": (test_cough.make_replica, {}),
    "vggsound": (
        test_vggsound.make_replica,
        {"classes": test_vggsound.CLASSES, **test_vggsound.SMALL},
    ),
    "manifest": (lambda tmp: test_manifest.make_stream(tmp), {"window_s": 1.0, "stride_s": 0.5}),
    # its fixture has a class of one trial
    "manifest (segmented)": (
        lambda tmp: test_manifest.make_segmented(tmp),
        {"min_class_samples": 1},
    ),
    # video file, image folder, depth array, audio and IMU, segmented and continuous
    "manifest (media)": (
        lambda tmp: test_manifest_media.make_segmented_media(tmp, samples=2),
        {"min_class_samples": 1, "media": {m: {"frames": 2} for m in ("cam", "pics", "depth")}},
    ),
    "manifest (media stream)": (
        lambda tmp: test_manifest_media.make_continuous_media(tmp),
        {"window_s": 1.0, "stride_s": 1.0, "min_class_samples": 1},
    ),
}


def test_every_registered_data_set_has_a_contract_case() -> None:
    assert set(dataset_names()) == {name.split(" ")[0] for name in DATASET_CASES}


def _tiny_net(data: PairedDataset, modality: str) -> ModalityNet:
    shape = data.shape(modality)
    if len(shape) == 4:  # video (F, C, H, W)
        encoder = create_encoder("video", shape[1], depth=18, d_model=16)
    else:
        encoder = create_encoder("sequence", shape[0], d_model=16, depth=1, downsample=1)
    return ModalityNet(encoder, num_classes=len(data.class_names), d_out=16)


@pytest.mark.filterwarnings("ignore:VGGSound. skipped")
@pytest.mark.parametrize("case", sorted(DATASET_CASES))
def test_data_set_reads_its_replica_and_describes_complete_model_cards(
    case: str, tmp_path: Path
) -> None:
    build, options = DATASET_CASES[case]
    entry = get_dataset(case.split(" ")[0])
    root = build(tmp_path) if build is not None else None
    if case.startswith("manifest"):
        options = {**options, "frame_cache": str(tmp_path / "frames")}
    data = entry.load(root, options)
    assert isinstance(data, PairedDataset) and len(data) > 0
    assert len(data.class_names) >= 2 and data.labels.max() < len(data.class_names)
    for modality in data.modalities:
        stream = data.stream(modality)
        shape = data.shape(modality)
        channels = shape[1] if len(shape) == 4 else shape[0]
        assert stream.rate_hz is not None and stream.rate_hz > 0, modality
        assert stream.channels is not None and len(stream.channels) == channels, modality
        norm = (
            None
            if len(shape) == 4
            else fit_normalization(np.asarray(data.inputs[modality]), "zscore")
        )
        card = describe_model(UnimodalTask(_tiny_net(data, modality), modality), data, norm)
        assert card is not None
        again = ModelCard.from_dict(card.to_dict()).to_dict()
        for key in ("rate_hz", "channels", "class_names"):
            assert again[key], (modality, key)
        # the raw recordings' rate predict reads a file without time stamps at (None: unknown)
        assert again["recording_rate_hz"] == stream.recording_rate_hz, modality
        assert stream.resampled or stream.recording_rate_hz == stream.rate_hz, modality
        assert again["window"]["samples"] == shape[0 if len(shape) == 4 else 1]
        assert again["window"]["seconds"] == pytest.approx(
            again["window"]["samples"] / stream.rate_hz
        )
        assert again["kind"] == data.stream(modality).kind, modality
        if len(shape) == 4:
            frame = again["frame"]
            assert (frame["height"], frame["width"]) == shape[2:], modality
            assert frame["color"] == ("gray" if channels == 1 else "rgb"), modality
            assert "value_range" in frame and frame["scale"], modality
        else:
            assert len(again["normalization"]["shift"]) == channels
        if again["kind"] == "audio":
            assert again["audio"] == {"sample_rate_hz": stream.rate_hz, "channels": channels}


def test_data_sets_are_listed_in_one_order_whatever_was_imported_first() -> None:
    expected = ["utd_mhad_embedded", "utd_mhad", "sp_sw_har", "avletters", "uestc_mmea", "cough",
                "vggsound", "manifest"]  # fmt: skip
    script = (
        "import dcat.data.manifest, dcat.data.avletters\n"
        "from dcat.data import dataset_names\n"
        "print(','.join(dataset_names()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(",")[: len(expected)] == expected


def test_dcat_datasets_lists_every_reader_with_its_options(capsys) -> None:
    from dcat.cli import main
    from dcat.data import list_datasets

    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    listed = [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")]
    assert listed == [entry.name for entry in list_datasets()]
    assert "utd_mhad_embedded: UTD-MHAD shipped inside dcat" in text
    assert "(data.root: not used)" in text and "(data.root: required)" in text
    assert "    window_s: float = 2.0\n" in text  # sp_sw_har's option, type and default
    assert "    frame_cache: str | Path = <data.root>/.dcat_frames\n" in text


def test_the_shipped_data_types_satisfy_the_training_protocols(tmp_path) -> None:
    """What the engine and the source cache ask of a data set, checked at run time too (mypy
    checks the signatures: tests/typing_contracts.py)."""
    import numpy as np

    from dcat.data.paired import PairedDataset
    from dcat.data.protocol import RawBatches, RawInto, TrainingData
    from dcat.training.engine import _only

    data = PairedDataset(
        {"a": np.zeros((2, 3, 4)), "b": np.ones((2, 1, 4))},
        [0, 1],
        [1, 2],
        ["r1", "r2"],
        ["x", "y"],
    )
    assert isinstance(data, TrainingData)
    assert not isinstance(data.inputs["a"], RawBatches)  # an in-memory array: a DataLoader reads
    assert _only(data, ["b"]).modalities == ["b"]  # a task's loaders carry only what it reads
    plain = torch.utils.data.TensorDataset(torch.zeros(2))
    assert not isinstance(plain, TrainingData) and _only(plain, ["b"]) is plain
    assert RawBatches in RawInto.__mro__  # a store that fills buffers also reads batches
