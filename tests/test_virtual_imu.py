"""Virtual IMU from skeletons (IMUTube-style): analytic trajectories, frames, units, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from dcat.data import load_utd_mhad_embedded
from dcat.data.utd_mhad import UTD_MHAD_ACTIONS
from dcat.errors import DcatError
from dcat.io.virtual_imu import (
    IMU_CHANNELS,
    KINECT_V1_JOINT_MAP,
    KINECT_V1_JOINTS,
    SEGMENTS,
    STANDARD_GRAVITY,
    UTD_MHAD_PLACEMENT,
    Segment,
    imu_to_channels,
    joint_map,
    local_quadratic,
    positions_from_channels,
    segment_frames,
    synthesize_imu,
    synthesize_imu_channels,
)

J = len(KINECT_V1_JOINTS)
UP = np.array([0.0, 1.0, 0.0])


def _skeleton(steps: int, **joints: np.ndarray) -> np.ndarray:
    """``(steps, 20, 3)``: every joint at a fixed pose, the named ones on the given tracks."""
    rng = np.random.default_rng(1)
    positions = np.repeat(rng.normal(size=(1, J, 3)), steps, axis=0)
    for name, track in joints.items():
        positions[:, KINECT_V1_JOINT_MAP[name]] = track
    return positions


def _circle(rate: float, omega: float, radius: float, seconds: float = 3.0) -> np.ndarray:
    """The right forearm sweeping a horizontal circle about the elbow, shoulder above it."""
    t = np.arange(int(seconds * rate)) / rate
    ones = np.ones_like(t)
    wrist = np.stack([radius * np.cos(omega * t), ones, radius * np.sin(omega * t)], axis=1)
    return _skeleton(
        len(t),
        right_wrist=wrist,
        right_elbow=np.array([0.0, 1.0, 0.0]),
        right_shoulder=np.array([0.0, 1.3, 0.0]),
    )


def _frames(positions: np.ndarray, segment: str) -> np.ndarray:
    """The frames of one of :data:`SEGMENTS` on a Kinect v1 skeleton."""
    s = SEGMENTS[segment]
    index = [KINECT_V1_JOINT_MAP[name] for name in (s.origin, s.axis_to, s.across)]
    return segment_frames(positions, *index)


def _sg_bias(window: int, theta: float) -> float:
    """Relative shortfall of a quadratic Savitzky–Golay second derivative on a sinusoid of
    ``theta`` radians per step: ``θ² (S0 S6 − S2 S4) / (12 (S0 S4 − S2²))`` to leading order,
    with ``Sn = Σ kⁿ`` over the window (from the Taylor series of ``cos kθ``)."""
    k = np.arange(window) - window // 2
    s0, s2, s4, s6 = (np.sum(k.astype(float) ** n) for n in (0, 2, 4, 6))
    return float(theta**2 * (s0 * s6 - s2 * s4) / (12 * (s0 * s4 - s2**2)))


def test_local_quadratic_is_savitzky_golay() -> None:
    values = np.random.default_rng(0).normal(size=(40, 4, 3))
    for window in (3, 5, 11):
        smoothed, second = local_quadratic(values, window, dt=0.1)
        kwargs = {"window_length": window, "polyorder": 2, "axis": 0, "mode": "interp"}
        assert np.allclose(smoothed, scipy.signal.savgol_filter(values, **kwargs), atol=1e-12)
        expected = scipy.signal.savgol_filter(values, deriv=2, delta=0.1, **kwargs)
        assert np.allclose(second, expected, atol=1e-10)
    _, second = local_quadratic(values, 3, dt=0.1)  # window 3: the central second difference
    central = (values[2:] - 2 * values[1:-1] + values[:-2]) / 0.01
    assert np.allclose(second[1:-1], central, atol=1e-10)


@pytest.mark.parametrize("gyro_unit", ["rad/s", "deg/s"])
def test_circle_centripetal_plus_gravity_and_vertical_turn_rate(gyro_unit: str) -> None:
    rate, omega, radius, smoothing = 100.0, np.pi, 0.5, 0.1  # window of 11 steps
    positions = _circle(rate, omega, radius)
    imu = synthesize_imu(
        positions, rate, "right_wrist", smoothing=smoothing, accel_unit="m/s2", gyro_unit=gyro_unit
    )
    inner = slice(22, -22)  # two windows from each end, where the fits are centred
    accel, gyro = imu[inner, :3], imu[inner, 3:]
    centripetal = radius * omega**2
    # The only error inside is the smoothing's shortfall on the sinusoidal track, 0.2 % of the
    # centripetal term here (_sg_bias); the tolerance allows twice that, on that term alone.
    bias = _sg_bias(11, omega / rate)
    assert 1e-3 < bias < 2.5e-3
    tolerance = 2 * bias * centripetal
    expected = np.hypot(centripetal, STANDARD_GRAVITY)
    assert np.abs(np.linalg.norm(accel, axis=1) - expected).max() < tolerance

    up_in_frame = np.einsum("tji,j->ti", _frames(positions, "right_wrist")[inner], UP)
    vertical = np.sum(accel * up_in_frame, axis=1)
    assert np.allclose(vertical, STANDARD_GRAVITY, atol=1e-9)  # 1 g reaction, no vertical motion
    horizontal = np.linalg.norm(accel - vertical[:, None] * up_in_frame, axis=1)
    assert np.abs(horizontal - centripetal).max() < tolerance

    # Uniform rotation: each step's log(R_tᵀ R_t+1) is exactly ωΔt, so the rate is exact; the
    # wrist turns from +x towards +z, a negative turn about world +y (right-hand rule).
    scale = 1.0 if gyro_unit == "rad/s" else 180 / np.pi
    assert np.allclose(gyro, -omega * scale * up_in_frame, rtol=1e-9, atol=1e-9 * scale)
    assert np.allclose(np.linalg.norm(gyro, axis=1), omega * scale, rtol=1e-9)


def test_at_rest_reads_one_g_up_and_no_turn() -> None:
    positions = _skeleton(40)
    for segment in SEGMENTS:
        imu = synthesize_imu(positions, 30.0, segment)
        frame = _frames(positions, segment)[0]
        assert np.allclose(imu[:, :3], frame.T @ UP, atol=1e-12)  # in g: |g| = 1
        assert np.allclose(imu[:, 3:], 0.0, atol=1e-9)
    # Another world "up" (z): the reading follows the gravity vector given.
    imu = synthesize_imu(positions, 30.0, "waist", gravity=(0, 0, -9.0), accel_unit="m/s2")
    frame = _frames(positions, "waist")[0]
    assert np.allclose(imu[:, :3], frame.T @ np.array([0.0, 0.0, 9.0]), atol=1e-12)


def test_constant_linear_acceleration_in_a_fixed_frame() -> None:
    rate, accel = 25.0, np.array([2.0, 0.0, 0.0])
    t = np.arange(60) / rate
    positions = _skeleton(60) + 0.5 * accel * (t**2)[:, None, None]
    imu = synthesize_imu(positions, rate, "right_wrist", accel_unit="m/s2", gyro_unit="rad/s")
    frame = _frames(positions, "right_wrist")[0]
    # A parabola is fitted exactly, ends included: every step reads R ᵀ (a − g).
    expected = frame.T @ (accel + STANDARD_GRAVITY * UP)
    assert np.allclose(imu[:, :3], expected, atol=1e-9)
    assert np.allclose(imu[:, 3:], 0.0, atol=1e-9)


def test_frames_are_rotations_and_degenerate_steps_follow_the_rule() -> None:
    positions = np.random.default_rng(2).normal(size=(50, 4, 3))
    frames = segment_frames(positions, 0, 1, 2)
    assert np.allclose(frames.transpose(0, 2, 1) @ frames, np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(frames), 1.0)
    axis = positions[:, 1] - positions[:, 0]
    assert np.allclose(frames[:, :, 0], axis / np.linalg.norm(axis, axis=1, keepdims=True))

    # Steps 0–1 and 5–6: the across joint on the x axis (a straight arm).
    steps = 8
    origin = np.zeros((steps, 3))
    axis_to = np.tile([1.0, 0.0, 0.0], (steps, 1))
    across = np.array([[0.0, np.cos(a), np.sin(a)] for a in np.linspace(0, 1, steps)])
    across[[0, 1, 5, 6]] = [2.0, 0.0, 0.0]
    axis_to[6] = [1.0, 0.2, 0.0]  # x moves while the roll is held
    across[6] = 2 * axis_to[6]
    frames = segment_frames(np.stack([origin, axis_to, across], axis=1), 0, 1, 2)
    assert np.allclose(frames.transpose(0, 2, 1) @ frames, np.eye(3), atol=1e-12)
    assert np.allclose(frames[0], frames[2]) and np.allclose(frames[1], frames[2])  # first valid
    assert np.allclose(frames[5], frames[4])  # the last valid step's across vector
    x6 = axis_to[6] / np.linalg.norm(axis_to[6])
    held = across[4] - (across[4] @ x6) * x6
    assert np.allclose(frames[6][:, 0], x6)
    assert np.allclose(frames[6][:, 1], held / np.linalg.norm(held))

    # No usable across vector at all: the world axis least aligned with x.
    x_axis = np.tile([1.0, 0.0, 0.0], (steps, 1))
    line = np.stack([origin, x_axis, 3 * x_axis], axis=1)
    frames = segment_frames(line, 0, 1, 2)
    assert np.allclose(frames, np.eye(3))  # x along world x; y the first of the other axes
    # Coincident x joints at one step: that step keeps the previous x axis; at every step: error.
    twisted = np.stack([origin, axis_to, across], axis=1)
    twisted[3, 1] = twisted[3, 0]
    frames = segment_frames(twisted, 0, 1, 2)
    assert np.allclose(frames[3][:, 0], frames[2][:, 0])
    with pytest.raises(DcatError, match=r"joints 0 and 1 coincide at every step"):
        segment_frames(np.zeros((5, 3, 3)), 0, 1, 2)
    with pytest.raises(DcatError, match=r"across joint 7 outside 0–2"):
        segment_frames(np.zeros((5, 3, 3)), 0, 1, 7)


def test_units_scale_exactly() -> None:
    positions = _circle(30.0, 2.0, 0.3) + np.random.default_rng(3).normal(0, 0.01, (90, J, 3))
    si = synthesize_imu(positions, 30.0, "right_wrist", accel_unit="m/s2", gyro_unit="rad/s")
    usual = synthesize_imu(positions, 30.0, "right_wrist")
    assert np.allclose(usual[:, :3] * STANDARD_GRAVITY, si[:, :3], rtol=1e-13, atol=0)
    assert np.allclose(usual[:, 3:] * np.pi / 180, si[:, 3:], rtol=1e-13, atol=0)
    millimetres = synthesize_imu(positions * 1000, 30.0, "right_wrist", metres_per_unit=1e-3)
    assert np.allclose(millimetres, usual, rtol=1e-10, atol=1e-12)


def test_layouts_and_other_joint_maps() -> None:
    positions = _circle(30.0, 2.0, 0.3)
    channels = positions.transpose(1, 2, 0).reshape(3 * J, -1)  # joint by joint x, y, z
    assert np.array_equal(positions_from_channels(channels), positions)
    assert channels[3 * 10 + 1, 5] == positions[5, KINECT_V1_JOINT_MAP["right_wrist"], 1]
    imu = synthesize_imu(positions, 30.0, "right_wrist")
    out = synthesize_imu_channels(channels, 30.0, "right_wrist")
    assert out.shape == (6, positions.shape[0]) and np.array_equal(out, imu_to_channels(imu))
    assert IMU_CHANNELS == ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
    # The same skeleton with its joints in another order, and the joint map to match.
    order = np.random.default_rng(4).permutation(J)
    shuffled = joint_map([KINECT_V1_JOINTS[i] for i in order])
    again = synthesize_imu(positions[:, order], 30.0, "right_wrist", joint_map=shuffled)
    assert np.array_equal(again, imu)
    custom = Segment(("right_hand",), "right_wrist", "right_hand", "right_elbow")
    assert synthesize_imu(positions, 30.0, custom).shape == (positions.shape[0], 6)


def test_segments_and_utd_mhad_placement_are_data() -> None:
    assert len(KINECT_V1_JOINTS) == 20 and KINECT_V1_JOINTS[10] == "right_wrist"
    for segment in SEGMENTS.values():
        assert set(segment.joints()) <= set(KINECT_V1_JOINTS)
    assert {"right_wrist", "right_thigh"} <= set(SEGMENTS)
    assert sorted(UTD_MHAD_PLACEMENT) == list(range(len(UTD_MHAD_ACTIONS)))
    assert {UTD_MHAD_PLACEMENT[c] for c in range(21)} == {"right_wrist"}
    assert {UTD_MHAD_PLACEMENT[c] for c in range(21, 27)} == {"right_thigh"}
    assert UTD_MHAD_ACTIONS[20] == "right hand pick up and throw"
    assert UTD_MHAD_ACTIONS[21] == "jogging in place"


def test_bad_input_names_the_argument() -> None:
    good = _skeleton(10)
    typo = Segment(("rigth_hand",), "right_elbow", "right_wrist", "right_hand")
    cases = [
        (lambda: synthesize_imu(good[..., :2], 30, "right_wrist"), r"positions .*\(10, 20, 2\)"),
        (lambda: synthesize_imu(good[0], 30, "right_wrist"), r"positions .*\(20, 3\)"),
        (
            lambda: synthesize_imu(good[:2], 30, "right_wrist"),
            r"positions has 2 steps; an acceleration needs 3",
        ),
        (lambda: synthesize_imu(good, 0, "right_wrist"), r"rate_hz must be a positive"),
        (
            lambda: synthesize_imu(good, 30, "right_wirst"),
            r"unknown segment 'right_wirst'.*did you mean 'right_wrist'",
        ),
        (lambda: synthesize_imu(good, 30, 3), r"segment must be a name"),
        (
            lambda: synthesize_imu(good, 30, typo),
            r"joints \['rigth_hand'\] that the joint map does not.*did you mean 'right_hand'",
        ),
        (lambda: synthesize_imu(good[:, :5], 30, "right_wrist"), r"outside the 5 joints"),
        (lambda: synthesize_imu(good, 30, "right_wrist", accel_unit="mg"), r"accel_unit"),
        (lambda: synthesize_imu(good, 30, "right_wrist", gyro_unit="rpm"), r"gyro_unit"),
        (lambda: synthesize_imu(good, 30, "right_wrist", gravity=(0, 1)), r"gravity must be 3"),
        (lambda: synthesize_imu(good, 30, "right_wrist", smoothing=-1), r"smoothing must be"),
        (lambda: positions_from_channels(np.zeros((61, 4))), r"\(3J, T\).*\(61, 4\)"),
        (lambda: imu_to_channels(np.zeros((4, 5))), r"imu .*\(T, 6\), got \(4, 5\)"),
        (lambda: joint_map(["a", "b", "a"]), r"joint names must be unique"),
    ]
    for call, message in cases:
        with pytest.raises(DcatError, match=message):
            call()
    broken = good.copy()
    broken[4, 7, 1] = np.nan
    with pytest.raises(DcatError, match=r"NaN or Inf values \(first at step 4, joint 7\)"):
        synthesize_imu(broken, 30, "right_wrist")


def test_on_the_embedded_utd_mhad() -> None:
    data = load_utd_mhad_embedded(subjects=[1])
    steps = data.shape("skeleton")[1]
    # Resampled trials: skeleton steps per second on the IMU's clock (50 Hz), so that virtual
    # and real readings share a time scale.
    rate = data.stream("imu").rate_hz * steps / data.shape("imu")[1]
    for label in (0, 8, 12, 21, 23, 26):
        index = int(np.flatnonzero(data.labels == label)[0])
        imu = synthesize_imu_channels(
            data.inputs["skeleton"][index], rate, UTD_MHAD_PLACEMENT[label]
        )
        assert imu.shape == (6, steps) and np.isfinite(imu).all()
        # Gravity dominates a wrist or thigh sensor's reading (the skeleton is in metres).
        assert 0.7 < np.median(np.linalg.norm(imu[:3], axis=0)) < 1.5
