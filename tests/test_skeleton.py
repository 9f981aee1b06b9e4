"""Skeletons: layouts as data, the encoders' input streams, body normalisation, augmentation,
the skeleton encoders' contract, and how an experiment wires a layout in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dcat.data.augment import SkeletonAugment, random_crop, vertical_rotations
from dcat.errors import DcatError
from dcat.io.normalization import center_positions, fit_normalization
from dcat.io.skeleton import LAYOUTS, SkeletonLayout, body_normalize, get_layout
from dcat.io.virtual_imu import KINECT_V1_JOINTS
from dcat.nn.encoders import create_encoder
from dcat.nn.encoders.skeleton import STREAMS, skeleton_streams
from dcat.nn.model import ModalityNet
from dcat.training.config import TrainConfig

from conftest import deployed_window

KINECT = list(LAYOUTS["kinect_v1"].parents)
JOINTS = {"kinect_v1": 20, "kinect_v2": 25, "azure_kinect": 32, "mediapipe_pose": 33}


# ---------------------------------------------------------------------------------------------
# Layouts


@pytest.mark.parametrize("name", sorted(JOINTS))
def test_each_shipped_layout_is_a_tree_rooted_at_its_root(name: str) -> None:
    layout = LAYOUTS[name]
    assert len(layout.joints) == len(layout.parents) == JOINTS[name]
    assert layout.parents[layout.root] == -1
    assert [j for j, p in enumerate(layout.parents) if p < 0] == [layout.root]
    for joint in range(len(layout.joints)):  # every joint reaches the root, without a cycle
        seen = {joint}
        while joint != layout.root:
            joint = layout.parents[joint]
            assert joint not in seen
            seen.add(joint)
    assert layout.scale[0] != layout.scale[1] and layout.up_axis == 1 and layout.dims == 3
    assert get_layout(layout.to_dict(), name) == layout  # as a config would write it


def test_kinect_v1_is_utd_mhads_joint_order() -> None:
    layout = LAYOUTS["kinect_v1"]
    assert layout.joints == KINECT_V1_JOINTS  # Skeleton_joint_order.txt
    named = {c: layout.joints[p] for c, p in zip(layout.joints, layout.parents, strict=True)
             if p >= 0}  # fmt: skip
    assert named["right_hand"] == "right_wrist" and named["right_wrist"] == "right_elbow"
    assert named["head"] == "shoulder_center" and layout.joints[layout.root] == "hip_center"


def test_the_embedded_skeleton_is_kinect_v1_with_y_up() -> None:
    from dcat.data import load_utd_mhad_embedded

    data = load_utd_mhad_embedded(subjects=[1])
    joints = data.inputs["skeleton"][:, :, 0].reshape(-1, 20, 3)  # first frame, joint by joint
    index = {name: i for i, name in enumerate(LAYOUTS["kinect_v1"].joints)}
    # standing subjects: the head is above the hips, the feet below (y is vertical)
    assert np.all(joints[:, index["head"], 1] > joints[:, index["hip_center"], 1])
    assert np.all(joints[:, index["left_foot"], 1] < joints[:, index["left_knee"], 1])


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"joints": ["a", "b"], "parents": [None, "c"], "root": "a", "scale": ["a", "b"]},
         r"parent 'c' is not one of its joints"),
        ({"joints": ["a", "b", "c"], "parents": [None, "c", "b"], "root": "a",
          "scale": ["a", "b"]}, r"joint 'b' never reaches the root \(a cycle\)"),
        ({"joints": ["a", "b"], "parents": [None, None], "root": "a", "scale": ["a", "b"]},
         r"joint 'b' has no parent"),
        ({"joints": ["a", "b"], "parents": ["b", None], "root": "a", "scale": ["a", "b"]},
         r"joint 'a' must have no parent \(it is the root\)"),
        ({"joints": ["a", "b"], "parents": [None], "root": "a", "scale": ["a", "b"]},
         r"parents lists 1 entries for 2 joints"),
        ({"joints": ["a", "b"], "parents": [None, "a"], "root": "a", "scale": ["a", "a"]},
         r"the scale pair must be two joints"),
        ({"joints": ["a", "b"], "parents": [None, "a"], "root": "a", "scale": ["a", "b"],
          "up_axis": "w"}, r"up_axis must be x, y or z, got 'w'"),
        ({"joints": ["a", "b"], "parents": [None, "a"], "root": "a"},
         r"missing key\(s\) \['scale'\]"),
        ({"joints": "ab", "parents": [None, "a"], "root": "a", "scale": ["a", "b"]},
         r"joints must be a list of joint names, got 'ab'"),
        ({"joints": ["a", "b"], "parents": [None, "a"], "root": "a", "scale": ["a", "b"],
          "dims": 4}, r"dims must be 2 or 3, got 4"),
    ],
)  # fmt: skip
def test_a_layout_that_is_not_a_tree_is_named(layout: dict, message: str) -> None:
    with pytest.raises(DcatError, match=r"skeleton layout 'mine': " + message):
        get_layout(layout, "mine")


def test_a_user_layout_by_name_or_by_child_to_parent_mapping() -> None:
    by_list = get_layout(
        {"joints": ["pelvis", "chest", "head"], "parents": [None, "pelvis", "chest"],
         "root": "pelvis", "scale": ["pelvis", "chest"], "up_axis": "x", "dims": 2}
    )  # fmt: skip
    assert by_list.parents == (-1, 0, 1) and by_list.up_axis == 0 and by_list.dims == 2
    by_map = SkeletonLayout.from_names(
        "custom", ["pelvis", "chest", "head"], {"chest": "pelvis", "head": "chest"},
        "pelvis", ["pelvis", "chest"], "x", 2,
    )  # fmt: skip
    assert by_map == by_list and by_map.channels == 6
    with pytest.raises(DcatError, match="up_axis one of its axes, got dims 2, up_axis 2"):
        SkeletonLayout.from_names("flat", ["a", "b"], [None, "a"], "a", ["a", "b"], "z", 2)
    with pytest.raises(DcatError, match=r"unknown skeleton layout 'kinect'.*kinect_v1"):
        get_layout("kinect")


# ---------------------------------------------------------------------------------------------
# Streams and body normalisation, on a tiny skeleton worked by hand

# three joints in a chain: root (0) ← 1 ← 2, over 3 frames; channels joint by joint (x, y, z)
PARENTS = [-1, 0, 1]
FRAMES = np.array(
    [
        [[0, 0, 0], [0, 1, 0], [1, 1, 0]],  # frame 0: joint 1 above the root, joint 2 right of 1
        [[1, 0, 0], [1, 2, 0], [1, 2, 1]],  # frame 1
        [[1, 0, 0], [1, 2, 0], [2, 2, 1]],  # frame 2
    ],
    dtype=np.float32,
)  # (T, J, 3)


def _channels(frames: np.ndarray) -> np.ndarray:
    """``(T, J, D)`` → ``(J·D, T)``."""
    return frames.reshape(frames.shape[0], -1).T.copy()


def test_streams_by_hand() -> None:
    x = torch.from_numpy(_channels(FRAMES))[None]
    positions, motion, bones = skeleton_streams(x, STREAMS, PARENTS)
    torch.testing.assert_close(positions, x)
    expected_motion = np.zeros_like(FRAMES)
    expected_motion[0] = [[1, 0, 0], [1, 1, 0], [0, 1, 1]]  # frame 1 − frame 0
    expected_motion[1] = [[0, 0, 0], [0, 0, 0], [1, 0, 0]]  # frame 2 − frame 1; last frame 0
    torch.testing.assert_close(motion[0], torch.from_numpy(_channels(expected_motion)))
    expected_bones = np.array(
        [
            [[0, 0, 0], [0, 1, 0], [1, 0, 0]],
            [[0, 0, 0], [0, 2, 0], [0, 0, 1]],
            [[0, 0, 0], [0, 2, 0], [1, 0, 1]],
        ],
        dtype=np.float32,
    )
    torch.testing.assert_close(bones[0], torch.from_numpy(_channels(expected_bones)))
    with pytest.raises(DcatError, match="the bones stream needs the joints' parents"):
        skeleton_streams(x, ["bones"], None)


def test_body_normalisation_centres_the_root_and_divides_by_the_torso() -> None:
    x = _channels(FRAMES)[None]  # (1, 9, 3)
    out = body_normalize(x, root=0, scale=(0, 1)).reshape(1, 3, 3, 3)
    np.testing.assert_allclose(out[:, 0], 0.0)  # the root at the origin in every frame
    torso = np.linalg.norm(FRAMES[:, 1] - FRAMES[:, 0], axis=1).mean()  # (1 + 2 + 2) / 3
    assert torso == pytest.approx(5 / 3)
    np.testing.assert_allclose(out[0, 1, :, 1], [0, 2 / torso, 0], rtol=1e-6)  # joint 1, frame 1
    # where the body stands and how big it is are gone; the pose stays
    moved = x * 2.5 + np.tile([3.0, -1.0, 7.0], 3)[None, :, None]
    np.testing.assert_allclose(body_normalize(moved, 0, (0, 1)), out.reshape(x.shape), atol=1e-5)
    # the centring mode a model card records reads the same
    mode = LAYOUTS["kinect_v1"].body_mode()
    assert mode == "body:3:3:1:3"
    np.testing.assert_allclose(center_positions(x, "body:0:0:1:3"), out.reshape(x.shape))
    with pytest.raises(DcatError, match="joint 5 of 3 does not exist"):
        body_normalize(x, root=5, scale=(0, 1))


def test_statistics_remember_the_body_normalisation() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(6, 60, 10)).astype(np.float32)
    stats = fit_normalization(data, center="body:3:3:1:3")
    expected = (body_normalize(data, 3, (3, 1)) - stats.shift[:, None]) / stats.scale[:, None]
    np.testing.assert_allclose(stats.apply(data), expected, rtol=1e-5, atol=1e-5)
    assert stats.to_dict()["center"] == "body:3:3:1:3"


def test_predict_body_normalises_as_training_does() -> None:
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(6, 60, 16)) + 2.0).astype(np.float32)
    stats = fit_normalization(x, "zscore", center=LAYOUTS["kinect_v1"].body_mode())
    np.testing.assert_array_equal(deployed_window(stats, x[2]), stats.apply(x[2]))


# ---------------------------------------------------------------------------------------------
# Augmentation


def _bone_lengths(raw: torch.Tensor) -> torch.Tensor:
    """``(B, J·3, T)`` → ``(B, J, T)`` lengths of each joint's bone (the root's is 0)."""
    (bones,) = skeleton_streams(raw, ["bones"], LAYOUTS["kinect_v1"].parents)
    return bones.view(raw.shape[0], -1, 3, raw.shape[-1]).norm(dim=2)


SHIFT = torch.linspace(-0.5, 0.5, 60)
SCALE = torch.linspace(0.2, 0.6, 60)


def _normalised(raw: torch.Tensor) -> torch.Tensor:
    return (raw - SHIFT.view(1, -1, 1)) / SCALE.view(1, -1, 1)


def _raw(x: torch.Tensor) -> torch.Tensor:
    return x * SCALE.view(1, -1, 1) + SHIFT.view(1, -1, 1)


def test_rotation_about_the_vertical_keeps_bone_lengths_and_heights() -> None:
    torch.manual_seed(0)
    raw = torch.randn(4, 60, 12)
    augment = SkeletonAugment(rotation=90.0, shift=SHIFT, scale=SCALE).train()
    turned = _raw(augment(_normalised(raw)))
    torch.testing.assert_close(_bone_lengths(turned), _bone_lengths(raw), rtol=1e-4, atol=1e-4)
    before, after = raw.view(4, 20, 3, 12), turned.view(4, 20, 3, 12)
    torch.testing.assert_close(after[:, :, 1], before[:, :, 1], rtol=1e-4, atol=1e-4)  # y kept
    assert not torch.allclose(after, before, atol=1e-2)
    r = vertical_rotations(500, 30.0, up_axis=1)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(500, 3, 3))
    angles = torch.rad2deg(torch.atan2(r[:, 2, 0], r[:, 0, 0]).abs())
    assert angles.max() <= 30.0 + 1e-4 and angles.max() > 28.0
    torch.testing.assert_close(r[:, 1], torch.tensor([0.0, 1.0, 0.0]).expand(500, 3))


def test_scaling_multiplies_bone_lengths_by_one_gain_per_sample() -> None:
    torch.manual_seed(0)
    raw = torch.randn(5, 60, 8)
    augment = SkeletonAugment(scaling=0.2, shift=SHIFT, scale=SCALE).train()
    bones = [j for j, p in enumerate(KINECT) if p >= 0]  # the root has no bone
    ratio = _bone_lengths(_raw(augment(_normalised(raw))))[:, bones] / _bone_lengths(raw)[:, bones]
    gains = ratio[:, :1, :1]
    torch.testing.assert_close(ratio, gains.expand_as(ratio), rtol=1e-3, atol=1e-3)
    assert gains.flatten().std() > 0.01  # each sample its own gain
    assert augment.eval()(raw) is raw


def test_temporal_crop_resamples_a_stretch_of_the_window() -> None:
    torch.manual_seed(0)
    ramp = torch.linspace(0, 1, 40).expand(64, 3, 40).contiguous()
    cropped = random_crop(ramp, 0.5)
    steps = cropped.diff(dim=2)
    torch.testing.assert_close(steps, steps[..., :1].expand_as(steps), atol=1e-5, rtol=1e-4)
    kept = cropped[:, 0, -1] - cropped[:, 0, 0]  # a ramp's crop keeps a fraction of its span
    assert kept.min() >= 0.5 - 1e-5 and kept.max() <= 1 + 1e-5 and kept.min() < 0.6
    assert cropped.min() >= 0 and cropped.max() <= 1 + 1e-6
    assert random_crop(ramp, 0.0) is ramp


def test_skeleton_augmentation_options_are_checked() -> None:
    with pytest.raises(DcatError, match="needs 3-D joints, the skeleton has 2"):
        SkeletonAugment(rotation=10, dims=2)
    with pytest.raises(DcatError, match=r"augmentation crop is a fraction of the window < 1"):
        SkeletonAugment(crop=1.0)
    with pytest.raises(DcatError, match="a 3-D skeleton has joints × 3 channels, got 4"):
        SkeletonAugment(rotation=10).train()(torch.randn(2, 4, 8))
    jitter_only = SkeletonAugment(jitter=0.1, crop=0.2, dims=2).train()
    assert jitter_only(torch.zeros(2, 4, 8)).shape == (2, 4, 8)  # 2-D: no rotation, the rest


# ---------------------------------------------------------------------------------------------
# The encoders: the registry's contract for each architecture

STEPS = 16
ARCHS = {  # name → (tiny options, sequence length of STEPS steps)
    "skeleton_tcn": ({"width": 16, "depth": 3, "downsample": 2}, STEPS // 2),
    "skeleton_hcn": ({"width": 32}, STEPS // 8),
}


def _encoder(name: str, **extra):
    torch.manual_seed(0)
    return create_encoder(name, 60, parents=KINECT, **ARCHS[name][0], **extra)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_skeleton_encoder_shapes_and_round_trip(name: str) -> None:
    encoder = _encoder(name).eval()
    out = encoder(torch.randn(2, 60, STEPS))
    assert out.shape == (2, ARCHS[name][1], encoder.d_model)
    assert encoder.output_length(STEPS) == ARCHS[name][1]
    net = ModalityNet(encoder, d_out=16, num_classes=4).eval()
    rebuilt = ModalityNet.from_architecture(net.architecture()).eval()
    assert rebuilt.architecture() == net.architecture()
    assert rebuilt.architecture()["encoder_options"]["parents"] == KINECT
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(3, 60, STEPS)
    torch.testing.assert_close(rebuilt(x)[0], net(x)[0])


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_each_stream_subset_trains(name: str) -> None:
    for streams in (["positions"], ["motion", "bones"]):
        encoder = _encoder(name, streams=streams).train()
        encoder(torch.randn(2, 60, 8)).sum().backward()
        assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)
    no_layout = create_encoder(name, 60, streams=["positions", "motion"], **ARCHS[name][0])
    assert no_layout(torch.randn(2, 60, 8)).shape[0] == 2  # no parents: no bones, still fine


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"streams": ["bones"]}, r"the bones stream needs the joints' parents: declare the "
                                 r"modality's skeleton layout under data\.skeletons"),
        ({"parents": KINECT, "streams": ["speed"]}, r"streams must list some of"),
        ({"parents": KINECT, "streams": []}, r"streams must list some of"),
        ({"parents": KINECT[:5]}, r"parents must give a parent index .* for each of the 20 "
                                  r"joints of 60 channels / dims 3, got 5 entries"),
        ({"dims": 4}, r"needs dims 2 or 3"),
    ],
)  # fmt: skip
def test_bad_skeleton_encoder_options_are_named(options: dict, message: str) -> None:
    for name in ARCHS:
        with pytest.raises(DcatError, match=message):
            create_encoder(name, 60, **options)


def test_short_or_misshapen_input_is_named() -> None:
    with pytest.raises(DcatError, match=r"SkeletonHCN needs at least 8 time steps, got T=6"):
        _encoder("skeleton_hcn")(torch.randn(2, 60, 6))
    with pytest.raises(DcatError, match=r"SkeletonTCN expects input of shape \(B, 60, T\)"):
        _encoder("skeleton_tcn")(torch.randn(2, 57, 16))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCHS))
def test_skeleton_encoder_exports_to_onnx(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from dcat.deploy.export import DeployedNet, _onnx, _onnx_logits

    model = DeployedNet(ModalityNet(_encoder(name), d_out=16, num_classes=4)).eval()
    x = torch.randn(3, 60, STEPS)
    _onnx(model, x[:2], tmp_path / "model.onnx")
    with torch.no_grad():
        reference = model(x).numpy()
    np.testing.assert_allclose(
        _onnx_logits(tmp_path / "model.onnx", x.numpy()), reference, atol=1e-4, rtol=1e-4
    )


# ---------------------------------------------------------------------------------------------
# An experiment with a skeleton layout: the encoder's bones, body centring, the augmentation,
# and the fingerprint of every model of that modality


def _config(*overrides: str):
    from dcat.experiment.config import load_config

    return load_config("utd_mhad_paper", ["data.skeletons={skeleton: kinect_v1}", *overrides])


def _fingerprints(config) -> dict[str, dict]:
    from collections import defaultdict

    from dcat.experiment.fingerprint import job_fingerprints
    from dcat.experiment.plan import plan_jobs
    from dcat.experiment.recipe import Recipe

    return job_fingerprints(
        config, [Recipe.of(config, job) for job in plan_jobs(config)], class_names=["a", "b"],
        data_digests=defaultdict(lambda: "data"), split_digests=defaultdict(lambda: "split"),
    )  # fmt: skip


def _skeleton_runs(fingerprints: dict[str, dict]) -> set[str]:
    """The skeleton's own models and the transfers that learn from it (OOD split, seed 0)."""
    runs = {
        run.removeprefix("runs/ood/seed0/").rsplit("_w", 1)[0]
        for run in fingerprints
        if run.startswith("runs/ood/seed0/")
    }
    return {r for r in runs if r.startswith("skeleton/") or r.endswith("from-skeleton")}


def _changed(before: dict[str, dict], after: dict[str, dict]) -> set[str]:
    """The run folders (split and seed 0 of the OOD split) whose fingerprint differs."""
    return {
        run.removeprefix("runs/ood/seed0/").rsplit("_w", 1)[0]
        for run in before
        if run.startswith("runs/ood/seed0/") and before[run] != after[run]
    }


def test_a_layout_gives_the_encoder_its_bones_and_the_augmentation_its_vertical() -> None:
    from dcat.data.augment import InertialAugment
    from dcat.experiment.build import augmentation, build_net, fit_stats
    from dcat.experiment.runner import load_dataset

    config = _config(
        "modalities.skeleton.encoder=skeleton_tcn", "modalities.skeleton.options={width: 16}",
        "data.centering={skeleton: body}", "data.augment={skeleton: {rotation: 30}, imu: "
        "{rotation: 30}}",
    )  # fmt: skip
    data = load_dataset(config).subset(range(40))
    net = build_net(config, data, "skeleton", 0)
    options = net.architecture()["encoder_options"]
    assert options == {"width": 16, "parents": KINECT, "dims": 3}
    stats = fit_stats(config, data)
    assert stats["skeleton"].center == "body:3:3:1:3" and stats["imu"].center is None
    skeleton = augmentation(config, "skeleton", stats)
    assert isinstance(skeleton, SkeletonAugment) and skeleton.up_axis == 1
    assert type(augmentation(config, "imu", stats)) is InertialAugment
    # an encoder without a parents option (sequence) gets none
    plain = _config()
    assert "parents" not in build_net(plain, data, "skeleton", 0).architecture()["encoder_options"]


def test_a_layout_of_other_channels_is_refused_before_training() -> None:
    from dcat.experiment.build import normalization_kinds
    from dcat.experiment.runner import load_dataset

    config = _config("data.skeletons={skeleton: kinect_v2}")
    data = load_dataset(config)
    with pytest.raises(DcatError, match=r"data\.skeletons\.skeleton: layout 'kinect_v2' has 25 "
                                        r"joints × 3 = 75 channels, the modality's samples are "
                                        r"\(60, 32\)"):  # fmt: skip
        normalization_kinds(config, data)


def test_config_errors_of_layouts_and_body_centring() -> None:
    from dcat.experiment.config import load_config

    with pytest.raises(
        DcatError,
        match=r"data\.centering\.skeleton: 'body' needs the "
        r"modality's skeleton layout under data\.skeletons",
    ):
        load_config("utd_mhad_paper", ["data.centering={skeleton: body}"])
    with pytest.raises(
        DcatError,
        match=r"data\.skeletons\.skeleton: unknown skeleton layout "
        r"'kinect_v0'.*did you mean",
    ):
        _config("data.skeletons={skeleton: kinect_v0}")
    custom = _config(
        "data.skeletons={skeleton: {joints: [a, b, c], parents: [null, a, b], root: a, "
        "scale: [a, c], up_axis: z}}"
    )
    layout = custom.data.layout("skeleton")
    assert layout.parents == (-1, 0, 1) and layout.up_axis == 2 and layout.scale == (0, 2)


def test_every_new_option_changes_the_fingerprint_of_exactly_its_models() -> None:
    from dcat.experiment.config import load_config

    base = _fingerprints(_config())
    before_layouts = _fingerprints(load_config("utd_mhad_paper"))
    # declaring a layout changes the skeleton's own models and the transfers learning from them
    assert _changed(before_layouts, base) == _skeleton_runs(base)
    for override in (
        "data.skeletons={skeleton: mediapipe_pose}",
        "data.centering={skeleton: body}",
        "data.augment={skeleton: {rotation: 30.0}}",
        "data.augment={skeleton: {crop: 0.1}}",
        "modalities.skeleton.train={label_smoothing: 0.1}",
        "modalities.skeleton.train={optimizer: adamw}",
        "modalities.skeleton.train={schedule: cosine}",
        "modalities.skeleton.train={schedule: cosine, warmup_epochs: 2}",
    ):
        changed = _changed(base, _fingerprints(_config(override)))
        assert changed == _skeleton_runs(base), override
    cosine = _fingerprints(_config("modalities.skeleton.train={schedule: cosine}"))
    warm = _fingerprints(_config("modalities.skeleton.train={schedule: cosine, warmup_epochs: 2}"))
    assert _changed(cosine, warm) == _skeleton_runs(base)


def test_unset_new_options_leave_the_fingerprints_as_they_were() -> None:
    from dcat.experiment.config import load_config

    config = load_config("utd_mhad_paper", ["data.augment={imu: {rotation: 10.0}}"])
    for fingerprint in _fingerprints(config).values():
        train = fingerprint["train"]
        assert not {"optimizer", "schedule", "warmup_epochs", "label_smoothing"} & set(train)
        assert "skeleton" not in fingerprint["data"]
        assert "crop" not in fingerprint["data"].get("augment", {})
    explicit = load_config(
        "utd_mhad_paper",
        ["data.augment={imu: {rotation: 10.0, crop: 0.0}}",
         "train.optimizer=adam", "train.schedule=constant", "train.label_smoothing=0.0"],
    )  # fmt: skip
    assert _fingerprints(explicit) == _fingerprints(config)


def test_the_default_encoder_is_one_of_the_family() -> None:
    from dcat.nn.encoders.skeleton import SkeletonTCN

    encoder = create_encoder("skeleton", 60, parents=KINECT)
    # the one of best validation F1 (the module's docstring): the temporal conv, 64 wide, on
    # positions and motion; bones stay available
    assert isinstance(encoder, SkeletonTCN) and encoder.d_model == 64
    assert list(encoder.inputs.streams) == ["positions", "motion"]
    assert encoder(torch.randn(2, 60, 32)).shape == (2, 16, 64)
    bones = create_encoder("skeleton", 60, parents=KINECT, streams=["positions", "bones"])
    assert list(bones.inputs.streams) == ["positions", "bones"]


def test_an_augmented_skeleton_target_keeps_its_frozen_source_cached_and_clean() -> None:
    from dcat.data import PairedDataset
    from dcat.training.engine import attach_source_caches
    from dcat.training.tasks import SourceSpec, TransferTask

    rng = np.random.default_rng(0)
    n = 8
    data = PairedDataset(
        {"skeleton": rng.normal(size=(n, 60, 16)).astype(np.float32),
         "teacher": rng.normal(size=(n, 60, 16)).astype(np.float32)},
        np.arange(n) % 2, np.ones(n, dtype=int), [f"r{i}" for i in range(n)], ["a", "b"],
    )  # fmt: skip
    source = ModalityNet(_encoder("skeleton_tcn"), d_out=16, num_classes=2).eval()
    target = ModalityNet(_encoder("skeleton_tcn"), d_out=16, num_classes=2)
    augment = SkeletonAugment(rotation=30.0, scaling=0.1, crop=0.2)
    task = TransferTask(target, "skeleton", [SourceSpec("teacher", source, method="logit_kd")],
                        augment=augment)  # fmt: skip
    attach_source_caches(task, data, TrainConfig(cache_dtype="float32"), progress=False)
    assert task.cached("teacher") and task.required_modalities() == ["skeleton"]
    batch = {
        "inputs": {"skeleton": torch.from_numpy(data.inputs["skeleton"][:4])},
        "label": torch.tensor([0, 1, 0, 1]),
        "index": torch.arange(4),
    }
    task.train()
    assert torch.isfinite(task(batch)["loss"])  # the target's input augmented, the source cached
    clean = source.forward_all(torch.from_numpy(data.inputs["teacher"][:4]))
    cached = task.source_outputs(task.specs[0], batch)
    torch.testing.assert_close(cached.logits, clean.logits, rtol=1e-5, atol=1e-5)


def test_isotropic_normalization_of_a_layout_keeps_bones_geometric() -> None:
    from dcat.data import load_utd_mhad_embedded
    from dcat.experiment.build import fit_stats

    config = _config("data.normalization={skeleton: isotropic, imu: zscore}")
    data = load_utd_mhad_embedded(subjects=[1], steps={"skeleton": 8, "imu": 8})
    stats = fit_stats(config, data)
    skeleton = stats["skeleton"]
    assert skeleton.kind == "isotropic" and stats["imu"].kind == "zscore"
    np.testing.assert_allclose(skeleton.shift, np.tile(skeleton.shift[:3], 20))  # per axis
    np.testing.assert_allclose(skeleton.scale, skeleton.scale[0])  # one scale
    raw = data.inputs["skeleton"][:2]
    parents = LAYOUTS["kinect_v1"].parents
    child = next(j for j, p in enumerate(parents) if p >= 0)

    def bone(x: np.ndarray) -> np.ndarray:
        return x[:, 3 * child : 3 * child + 3] - x[:, 3 * parents[child] : 3 * parents[child] + 3]

    np.testing.assert_allclose(
        bone(skeleton.apply(raw)), bone(raw) / skeleton.scale[0], rtol=1e-5, atol=1e-6
    )
