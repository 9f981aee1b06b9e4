"""Virtual IMU samples as training data: the data-set modality synthesised from a skeleton, the
``virtual`` transfer method, and its path through the experiment configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from dcat.data.paired import PairedDataset, StreamInfo
from dcat.data.virtual import with_virtual_imu
from dcat.errors import DcatError
from dcat.experiment.config import load_config
from dcat.experiment.plan import plan_jobs
from dcat.experiment.runner import load_dataset, run_experiment
from dcat.io.virtual_imu import KINECT_V1_JOINT_MAP, KINECT_V1_JOINTS, STANDARD_GRAVITY
from dcat.nn.encoders import create_encoder
from dcat.nn.model import ModalityNet
from dcat.training.methods import TransferBatch, VirtualSamples, get_method
from dcat.training.tasks import SourceSpec, TransferTask
from test_experiment import TINY as EXPERIMENT_TINY
from test_experiment import _write

RADIUS, OMEGA, SECONDS = 0.3, 2 * np.pi, 2.0  # one turn a second, a 2 s window


def _circling_wrist(steps: int) -> np.ndarray:
    """``(60, steps)`` Kinect v1 skeleton at rest but for the right wrist, which circles the
    elbow in the horizontal plane (x, z) at radius RADIUS and angular speed OMEGA."""
    t = np.linspace(0.0, SECONDS, steps)
    positions = np.tile(np.arange(20, dtype=float)[None, :, None] * 0.05, (steps, 1, 3))
    index = KINECT_V1_JOINT_MAP
    elbow = np.array([0.0, 1.0, 2.0])
    positions[:, index["right_elbow"]] = elbow
    positions[:, index["right_shoulder"]] = elbow + np.array([0.0, 0.3, 0.0])
    positions[:, index["right_wrist"]] = elbow + RADIUS * np.stack(
        [np.cos(OMEGA * t), np.zeros_like(t), np.sin(OMEGA * t)], axis=1
    )
    return positions.transpose(1, 2, 0).reshape(60, steps)


def _data(n: int = 4, skeleton_steps: int = 121, imu_steps: int = 50) -> PairedDataset:
    skeleton = np.stack([_circling_wrist(skeleton_steps)] * n)
    imu = np.zeros((n, 6, imu_steps), dtype=np.float32)
    return PairedDataset(
        {"imu": imu, "skeleton": skeleton},
        labels=np.arange(n) % 2,
        subjects=np.arange(n),
        recordings=[f"r{i}" for i in range(n)],
        class_names=["a", "b"],
        streams={"imu": StreamInfo(rate_hz=imu_steps / SECONDS, channels=None)},
    )


def test_the_virtual_modality_takes_the_real_sensor_time_base_and_shape() -> None:
    # 121 skeleton steps over the IMU's 2 s window: 60 Hz, whatever a reader claims
    data = with_virtual_imu(_data(), "imu_virtual", "skeleton", "imu", segment="right_wrist")
    virtual = data.inputs["imu_virtual"]
    assert virtual.shape == (4, 6, 50) and virtual.dtype == np.float32
    assert data.stream("imu_virtual").rate_hz == 25.0
    # the specific force: centripetal r·ω² (horizontal) and gravity (vertical), in g
    expected = np.hypot(RADIUS * OMEGA**2, STANDARD_GRAVITY) / STANDARD_GRAVITY
    magnitude = np.linalg.norm(virtual[0, :3, 5:-5], axis=0)
    np.testing.assert_allclose(magnitude, expected, rtol=0.02)
    # the frame (elbow → wrist) turns once a second about the vertical: |ω| = 360 °/s
    np.testing.assert_allclose(np.linalg.norm(virtual[0, 3:, 5:-5], axis=0), 360.0, rtol=0.02)


def test_a_per_class_placement_puts_each_class_on_its_segment() -> None:
    placement = {0: "right_wrist", 1: "right_thigh"}
    data = with_virtual_imu(_data(), "v", "skeleton", "imu", placement=placement)
    wrist = with_virtual_imu(_data(), "v", "skeleton", "imu", segment="right_wrist")
    thigh = with_virtual_imu(_data(), "v", "skeleton", "imu", segment="right_thigh")
    np.testing.assert_array_equal(data.inputs["v"][0], wrist.inputs["v"][0])  # label 0
    np.testing.assert_array_equal(data.inputs["v"][1], thigh.inputs["v"][1])  # label 1
    assert not np.allclose(wrist.inputs["v"][1], thigh.inputs["v"][1])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"segment": None}, "exactly one of segment and placement"),
        ({"placement": {0: "right_wrist"}, "segment": None}, "no segment for class(es) [1]"),
        ({"like": "skeleton"}, "must be an inertial series (N, 6, T)"),
        ({"base": "imu"}, "has 6 channels, but 20 joints"),
        ({"segment": "left_ear"}, "left_ear"),
    ],
)
def test_bad_virtual_modalities_are_named(change: dict, message: str) -> None:
    options = {"base": "skeleton", "like": "imu", "segment": "right_wrist", **change}
    base, like = options.pop("base"), options.pop("like")
    with pytest.raises(DcatError, match="virtual modality 'v'") as err:
        with_virtual_imu(_data(), "v", base, like, **options)
    assert message in str(err.value)


def test_a_real_sensor_without_a_rate_is_refused() -> None:
    data = _data()
    data.streams.pop("imu")
    with pytest.raises(DcatError, match="'imu' has no known rate"):
        with_virtual_imu(data, "v", "skeleton", "imu", segment="right_wrist")
    assert KINECT_V1_JOINTS[10] == "right_wrist"


def _net(seed: int = 0, channels: int = 6) -> ModalityNet:
    torch.manual_seed(seed)
    encoder = create_encoder("imu", channels, widths=[8, 8, 8])
    return ModalityNet(encoder, d_out=8, num_classes=3, attention="side")


def _terms(method, net, virtual, real, labels, augment=None) -> dict:
    """The method's term on a batch of virtual samples and their real twins."""
    batch = TransferBatch(
        net.forward_all(real), labels, net, real, augment=augment, samples=virtual
    )
    return method(batch)


def test_the_virtual_term_is_the_cross_entropy_on_the_virtual_twins() -> None:
    net = _net()
    method = VirtualSamples(None, net, name="v")
    virtual, real = torch.randn(5, 6, 20), torch.randn(5, 6, 20)
    labels = torch.tensor([0, 1, 2, 0, 1])
    net.eval()  # no dropout: the golden value is reproducible
    out = _terms(method, net, virtual, real, labels)
    torch.testing.assert_close(out["loss"], F.cross_entropy(net(virtual)[0], labels))
    assert set(out) == {"loss", "virt_ce"}
    doubled = _terms(method, net, virtual, real, labels, augment=lambda x: 2 * x)
    torch.testing.assert_close(doubled["loss"], F.cross_entropy(net(2 * virtual)[0], labels))


def test_the_linear_mapping_starts_at_the_identity_and_fits_the_real_twin() -> None:
    net = _net()
    method = VirtualSamples(None, net, name="v", mapping="linear")
    virtual, real = torch.randn(4, 6, 10), torch.randn(4, 6, 10)
    labels = torch.tensor([0, 1, 2, 0])
    net.eval()
    out = _terms(method, net, virtual, real, labels)
    fit = F.mse_loss(virtual, real)
    torch.testing.assert_close(out["virt_map"], fit)
    torch.testing.assert_close(out["loss"], F.cross_entropy(net(virtual)[0], labels) + fit)
    out["loss"].backward()
    assert method.mapping is not None and method.mapping.weight.grad is not None


def test_virtual_samples_must_have_the_target_shape_and_no_network() -> None:
    net = _net()
    method = VirtualSamples(None, net, name="v")
    with pytest.raises(DcatError, match=r"virtual samples \(2, 6, 9\) must have the target's"):
        _terms(method, net, torch.randn(2, 6, 9), torch.randn(2, 6, 10), torch.zeros(2).long())
    assert get_method("virtual").inputs == {"samples"}  # served samples, never a network
    with pytest.raises(DcatError, match="mapping must be one of"):
        TransferTask(net, "imu", [SourceSpec("v", None, method="virtual",
                                             options={"mapping": "cubic"})])  # fmt: skip
    with pytest.raises(DcatError, match="method 'dcat' needs the source's network"):
        SourceSpec("v", None, method="dcat")
    assert get_method("virtual").source_network is False


def test_a_transfer_task_adds_the_weighted_virtual_term_and_pretrains_on_it() -> None:
    net = _net()
    spec = SourceSpec("imu_virtual", None, method="virtual", weight=0.3, options={"pretrain": 2})
    task = TransferTask(net, "imu", [spec])
    assert task.required_modalities() == ["imu", "imu_virtual"]
    assert len(task.sources) == 0
    batch = {
        "inputs": {"imu": torch.randn(4, 6, 16), "imu_virtual": torch.randn(4, 6, 16)},
        "label": torch.tensor([0, 1, 2, 0]),
    }
    task.eval()  # the golden values need no dropout; the pretraining rule needs training mode
    out = task(batch)
    torch.testing.assert_close(out["loss"], out["ce"] + 0.3 * out["virt/imu_virtual"])
    torch.testing.assert_close(
        out["virt/imu_virtual"], F.cross_entropy(net(batch["inputs"]["imu_virtual"])[0],
                                                 batch["label"]))  # fmt: skip
    task.train()
    net.dropout.p = 0.0
    for epoch, real_on in [(0, False), (1, False), (2, True)]:
        task.epoch = epoch
        out = task(batch)
        expected = 0.3 * out["virt/imu_virtual"] + (out["ce"] if real_on else 0.0)
        torch.testing.assert_close(out["loss"], expected)


VIRTUAL = {
    **EXPERIMENT_TINY,
    "name": "tiny_virtual",
    "modalities": {
        "imu": {"encoder": "imu", "options": {"widths": [8, 16, 16]}},
        "skeleton": {"encoder": "sequence", "options": {"d_model": 16, "depth": 1}},
        "imu_virtual": {
            "derive": {"modality": "skeleton",
                       "virtual_imu": {"like": "imu", "placement": "utd_mhad"}},
        },
    },
    "transfers": [
        {"source": "skeleton", "target": "imu"},
        {"target": "imu", "sources": [{"modality": "imu_virtual", "method": "virtual",
                                        "weight": 0.5}]},
        {"target": "imu", "sources": [
            {"modality": "skeleton", "method": "dcat"},
            {"modality": "imu_virtual", "method": {"name": "virtual", "mapping": "linear"}},
        ]},
    ],
    "methods": ["dcat"],
    "lambdas": [],
    "reference": False,
    "train": {"max_epochs": 1, "batch_size": 32},
}  # fmt: skip


def test_a_virtual_source_has_no_baseline_and_its_data_is_the_raw_skeleton(tmp_path) -> None:
    config = load_config(_write(tmp_path, VIRTUAL))
    jobs = plan_jobs(config)
    assert [(j.method, j.target, j.source) for j in jobs] == [
        ("baseline", "imu", ""), ("baseline", "skeleton", ""),
        ("dcat", "imu", "skeleton"), ("virtual", "imu", "imu_virtual"),
        ("dcat+virtual_mappinglinear", "imu", "skeleton+imu_virtual"),
    ]  # fmt: skip
    data = load_dataset(config)
    virtual = data.inputs["imu_virtual"]
    assert virtual.shape == (len(data), 6, 32)
    # a virtual wrist at rest reads about 1 g; the raw skeleton's, not a centred one's
    assert 0.5 < float(np.median(np.linalg.norm(virtual[:, :3], axis=1))) < 2.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"transfers": [{"source": "imu_virtual", "target": "imu"}]},
         "a per-class placement reads the labels"),
        ({"modalities": {**VIRTUAL["modalities"], "imu_virtual": {"derive": {
            "modality": "skeleton", "points": [1], "virtual_imu": {"like": "imu",
                                                                   "segment": "waist"}}}}},
         "exactly one of channels, points and virtual_imu"),
    ],
)  # fmt: skip
def test_bad_virtual_configs_are_one_line_errors(tmp_path, change: dict, message: str) -> None:
    with pytest.raises(DcatError) as err:
        load_config(_write(tmp_path, {**VIRTUAL, **change}))
    assert message in str(err.value)


def test_virtual_samples_of_another_shape_are_refused_before_training(tmp_path) -> None:
    config = {**VIRTUAL, "data": {**VIRTUAL["data"],
                                  "options": {"steps": {"imu": 32, "skeleton": 16},
                                              "subjects": [1, 2, 3, 4]}}}  # fmt: skip
    config["modalities"] = {
        **VIRTUAL["modalities"],
        "imu_virtual": {
            "derive": {
                "modality": "skeleton",
                "virtual_imu": {"like": "imu", "segment": "right_wrist"},
            }
        },
    }
    config["transfers"] = [{"target": "skeleton", "sources": [
        {"modality": "imu_virtual", "method": "virtual"}]}]  # fmt: skip
    with pytest.raises(DcatError, match="needs the target's shape") as err:
        run_experiment(load_config(_write(tmp_path, config)), tmp_path / "out", log=lambda s: 0)
    assert "'imu_virtual' gives its samples to 'skeleton'" in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_virtual_samples_end_to_end(tmp_path) -> None:
    out = tmp_path / "out"
    report = run_experiment(load_config(_write(tmp_path, VIRTUAL)), out, log=lambda s: None)
    records = {(r["target"], r["method"], r["source"]): r
               for r in json.loads((out / "results.json").read_text())}  # fmt: skip
    assert set(records) == {
        ("imu", "baseline", ""), ("skeleton", "baseline", ""), ("imu", "dcat", "skeleton"),
        ("imu", "virtual", "imu_virtual"),
        ("imu", "dcat+virtual_mappinglinear", "skeleton+imu_virtual"),
    }  # fmt: skip
    virtual = out / records["imu", "virtual", "imu_virtual"]["run"]
    fingerprint = json.loads((virtual / "fingerprint.json").read_text())
    assert fingerprint["source"]["modality"] == "imu_virtual"
    assert fingerprint["source"]["derive"]["virtual_imu"]["placement"] == "utd_mhad"
    assert "run" not in fingerprint["source"]  # no source network
    task = yaml.safe_load((virtual / "config.yaml").read_text())["task"]
    assert [(s["method"], s["weight"], s["cached"]) for s in task["sources"]] == [
        ("virtual", 0.5, False)
    ]
    text = report.read_text()
    assert "### target imu ← source imu_virtual" in text
    assert "| Virtual samples (λ=0.5) |" in text.split("### target imu ← source imu_virtual")[1]
