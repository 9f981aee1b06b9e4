"""Per-sample centring of position-like channels (skeletons), in training and deployment."""

from __future__ import annotations

import numpy as np
import pytest

from dcat.errors import DcatError
from dcat.io.normalization import ChannelStats, center_positions, fit_normalization

from conftest import deployed_window


def _skeleton(n: int = 4, joints: int = 5, steps: int = 7, seed: int = 0) -> np.ndarray:
    """(N, 3·joints, T): a pose that moves, standing somewhere different in every sample."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(size=(n, joints, 3, steps))
    place = rng.normal(scale=10.0, size=(n, 1, 3, 1))  # where the subject stood
    return (pose + place).reshape(n, joints * 3, steps).astype(np.float32)


def test_mean_centring_removes_the_place_and_keeps_the_pose() -> None:
    x = _skeleton()
    c = center_positions(x, "mean")
    assert c.shape == x.shape and c.dtype == x.dtype
    points = c.reshape(4, 5, 3, 7)
    np.testing.assert_allclose(points.mean(axis=(1, 3)), 0.0, atol=1e-5)
    original = x.reshape(4, 5, 3, 7)
    # joint-to-joint vectors (the pose) are unchanged
    np.testing.assert_allclose(points[:, 1] - points[:, 0], original[:, 1] - original[:, 0],
                               atol=1e-4)  # fmt: skip
    # the same pose placed elsewhere gives the same centred sample
    moved = (original + np.array([5.0, -3.0, 2.0])[None, None, :, None]).reshape(x.shape)
    np.testing.assert_allclose(center_positions(moved, "mean"), c, atol=1e-4)
    # a single (C, T) sample works too
    np.testing.assert_allclose(center_positions(x[0], "mean"), c[0], atol=1e-6)


def test_root_centring_puts_the_root_joint_at_the_origin() -> None:
    x = _skeleton()
    c = center_positions(x, "root:2").reshape(4, 5, 3, 7)
    np.testing.assert_allclose(c[:, 2], 0.0, atol=1e-6)
    original = x.reshape(4, 5, 3, 7)
    np.testing.assert_allclose(c[:, 0], original[:, 0] - original[:, 2], atol=1e-5)
    assert center_positions(x, None) is x


@pytest.mark.parametrize(
    ("array", "mode", "message"),
    [
        (np.zeros((2, 4, 5)), "mean", r"C a multiple of 3 .* got shape \(2, 4, 5\)"),
        (np.zeros((2, 6, 5)), "root:2", r"root point 2 of 2 does not exist"),
        (np.zeros((2, 6, 5)), "median", r"centring must be 'mean' or 'root:J'"),
    ],
)
def test_centring_errors(array: np.ndarray, mode: str, message: str) -> None:
    with pytest.raises(DcatError, match=message):
        center_positions(array, mode)


def test_statistics_remember_the_centring_and_apply_it() -> None:
    x = _skeleton(n=8)
    stats = fit_normalization(x, "zscore", center="mean")
    assert stats.center == "mean"
    applied = stats.apply(x)
    np.testing.assert_allclose(applied.mean(axis=(0, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(applied.std(axis=(0, 2)), 1.0, atol=1e-4)
    card = stats.to_dict()
    assert card["center"] == "mean"
    again = ChannelStats.from_dict(card)
    np.testing.assert_array_equal(again.apply(x), applied)
    plain = fit_normalization(x, "zscore")
    assert (
        "center" not in plain.to_dict() and ChannelStats.from_dict(plain.to_dict()).center is None
    )


def test_predict_centres_as_training_does() -> None:
    x = _skeleton(n=6, joints=4, steps=16)
    stats = fit_normalization(x, "zscore", center="root:0")
    assert np.array_equal(deployed_window(stats, x[3]), stats.apply(x[3]))


def test_isotropic_statistics_share_one_mean_per_axis_and_one_scale() -> None:
    # two points (x, y, z each), 2 samples of 2 steps; axis means x 2, y 0, z -1
    points = np.array(
        [
            [[1.0, 3.0], [0.0, 2.0], [-1.0, -1.0], [3.0, 1.0], [0.0, -2.0], [-1.0, -1.0]],
            [[2.0, 2.0], [1.0, -1.0], [-2.0, 0.0], [2.0, 2.0], [-1.0, 1.0], [0.0, -2.0]],
        ]
    )
    stats = fit_normalization(points, "isotropic")
    np.testing.assert_allclose(stats.shift, [2.0, 0.0, -1.0, 2.0, 0.0, -1.0])
    deviations = points.reshape(2, 2, 3, 2) - np.array([2.0, 0.0, -1.0])[None, None, :, None]
    spread = np.sqrt((deviations**2).mean())
    np.testing.assert_allclose(stats.scale, np.full(6, spread))
    # a difference of points (a bone) is only rescaled, as a rotation would leave it rotated
    normed = stats.apply(points)
    bones = points[:, 3:] - points[:, :3]
    np.testing.assert_allclose(normed[:, 3:] - normed[:, :3], bones / spread)
    # per-channel z-scores distort it
    z = fit_normalization(points, "zscore").apply(points)
    assert not np.allclose((z[:, 3:] - z[:, :3]) * spread, bones)


def test_isotropic_statistics_need_whole_points() -> None:
    with pytest.raises(DcatError, match="points of 3 coordinates, got 5 channels"):
        fit_normalization(np.zeros((2, 5, 4)), "isotropic")
    assert fit_normalization(np.ones((2, 4, 3)), "isotropic", dims=2).shift.shape == (4,)
