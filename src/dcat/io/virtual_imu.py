"""Virtual inertial data (accelerometer + gyroscope) from 3-D skeleton joint trajectories.

After IMUTube (H. Kwon et al., "IMUTube: Automatic extraction of virtual on-body accelerometry
from video for human activity recognition", Proc. ACM IMWUT 4(3), 2020): a virtual sensor sits
on a body segment whose frame is built from neighbouring joints; its accelerometer reads the
segment frame's view of the joint's acceleration minus gravity (the specific force a real
accelerometer measures) and its gyroscope the angular velocity of that frame. See
``docs/design.md#virtual-imu-from-skeletons`` for the formulas and conventions.

Skeletons are ``(T, J, 3)`` positions (steps, joints, x y z) in the world frame of the capture
device, in metres unless ``metres_per_unit`` says otherwise; dcat's channel layout ``(3J, T)``
(joint by joint x, y, z, as :func:`dcat.io.normalization.center_positions` reads it) converts
with :func:`positions_from_channels`. Joints are found by name through a joint map (name →
index), so any skeleton layout works; :data:`KINECT_V1_JOINTS` is the 20-joint Kinect v1 order
of UTD-MHAD, and :data:`SEGMENTS` names the sensor placements for it.

Numpy only (no torch, no scipy): the smoothing is a Savitzky–Golay quadratic fit written out here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dcat.errors import DcatError, did_you_mean

__all__ = [
    "IMU_CHANNELS",
    "KINECT_V1_JOINTS",
    "KINECT_V1_JOINT_MAP",
    "SEGMENTS",
    "STANDARD_GRAVITY",
    "UTD_MHAD_PLACEMENT",
    "JointMap",
    "Segment",
    "imu_to_channels",
    "joint_map",
    "local_quadratic",
    "positions_from_channels",
    "segment_frames",
    "synthesize_imu",
    "synthesize_imu_channels",
]

JointMap = Mapping[str, int]
"""Joint name → index along the joint axis of a ``(T, J, 3)`` skeleton."""

STANDARD_GRAVITY = 9.80665
"""m/s² per g (the conventional value accelerometers report in)."""

IMU_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
"""Channel order of the output, the same as dcat's embedded UTD-MHAD ``imu`` modality."""

# UTD-MHAD's Skeleton_joint_order.txt (Kinect v1, 20 joints), 1-based there, 0-based here.
KINECT_V1_JOINTS: tuple[str, ...] = (
    "head", "shoulder_center", "spine", "hip_center",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
)  # fmt: skip


def joint_map(names: Sequence[str]) -> dict[str, int]:
    """The joint map of a skeleton whose joints are ``names`` in order."""
    if len(set(names)) != len(names):
        raise DcatError(f"joint names must be unique, got {list(names)}")
    return {name: index for index, name in enumerate(names)}


KINECT_V1_JOINT_MAP: dict[str, int] = joint_map(KINECT_V1_JOINTS)


@dataclass(frozen=True)
class Segment:
    """Where a virtual sensor sits and how its axes are built, by joint name.

    The frame (:func:`segment_frames`) has x from ``origin`` to ``axis_to``, y the part of
    ``origin`` → ``across`` orthogonal to x, and z = x × y. The sensor measures the
    acceleration of ``site``, the mean of the named joints (one joint, or two for a point
    halfway along a bone).

    Attributes:
        site: Joints whose mean position carries the sensor.
        origin: Joint at the start of the frame's x axis.
        axis_to: Joint the x axis points to.
        across: Joint that fixes the roll about x (must not lie on the x axis).
    """

    site: tuple[str, ...]
    origin: str
    axis_to: str
    across: str

    def joints(self) -> tuple[str, ...]:
        """Every joint name the segment uses."""
        return (*self.site, self.origin, self.axis_to, self.across)


# The hand joint of Kinect v1 is short and noisy, so the wrist's roll comes from the shoulder
# (the arm's plane); a straight arm makes that plane degenerate, which segment_frames handles.
SEGMENTS: dict[str, Segment] = {
    "right_wrist": Segment(("right_wrist",), "right_elbow", "right_wrist", "right_shoulder"),
    "left_wrist": Segment(("left_wrist",), "left_elbow", "left_wrist", "left_shoulder"),
    # A thigh sensor sits halfway down the femur; the pelvis (hip to hip) fixes the roll.
    "right_thigh": Segment(("right_hip", "right_knee"), "right_hip", "right_knee", "left_hip"),
    "left_thigh": Segment(("left_hip", "left_knee"), "left_hip", "left_knee", "right_hip"),
    "waist": Segment(("hip_center",), "hip_center", "spine", "left_hip"),
}
"""Sensor placements for :data:`KINECT_V1_JOINTS` (joint names, so other layouts that use the
same names work too)."""

# UTD-MHAD (Chen, Jafari, Kehtarnavaz, ICIP 2015): the inertial sensor is on the right wrist
# for actions 1–21 and on the right thigh for 22–27; keys are dcat's labels (action − 1).
UTD_MHAD_PLACEMENT: dict[int, str] = {
    label: "right_wrist" if label < 21 else "right_thigh" for label in range(27)
}


def positions_from_channels(array: np.ndarray) -> np.ndarray:
    """dcat's skeleton layout ``(3J, T)`` (joint by joint x, y, z) → ``(T, J, 3)``.

    Raises:
        DcatError: ``array`` is not 2-D with a channel count that is a multiple of 3.
    """
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[0] % 3 or array.shape[0] == 0:
        raise DcatError(
            f"skeleton channels must have shape (3J, T) (joint by joint x, y, z), got {array.shape}"
        )
    return array.reshape(array.shape[0] // 3, 3, array.shape[1]).transpose(2, 0, 1)


def imu_to_channels(imu: np.ndarray) -> np.ndarray:
    """:func:`synthesize_imu`'s ``(T, 6)`` → dcat's IMU layout ``(6, T)`` (:data:`IMU_CHANNELS`)."""
    imu = np.asarray(imu)
    if imu.ndim != 2 or imu.shape[1] != 6:
        raise DcatError(f"imu must have shape (T, 6), got {imu.shape}")
    return np.ascontiguousarray(imu.T)


def local_quadratic(
    values: np.ndarray, window: int, dt: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Savitzky–Golay smoothing and second derivative: a least-squares parabola per window.

    Step ``t`` gets the value and second derivative of the parabola fitted to the ``window``
    steps centred on it. Near the ends, where no centred window fits, the first (last) full
    window's parabola is evaluated at the step, as ``scipy.signal.savgol_filter(...,
    polyorder=2, mode="interp")`` does; the second derivative is then constant over the first
    and last ``window // 2`` steps. ``window = 3`` gives the plain central second difference
    ``(x[t+1] − 2 x[t] + x[t−1]) / dt²`` inside.

    Args:
        values: ``(T, ...)`` samples, ``T ≥ window``.
        window: Odd number of steps, at least 3.
        dt: Seconds per step.

    Returns:
        ``(smoothed, second_derivative)``, each float64 of ``values``' shape; the second
        derivative in units per second².
    """
    values = np.asarray(values, dtype=np.float64)
    steps = values.shape[0]
    if window < 3 or window % 2 == 0 or window > steps:
        raise DcatError(f"smoothing window must be odd, ≥ 3 and ≤ {steps} steps, got {window}")
    flat = values.reshape(steps, -1)
    local = np.arange(window, dtype=np.float64)
    basis = np.stack([np.ones(window), local, local**2], axis=1)  # (W, 3)
    windows = np.lib.stride_tricks.sliding_window_view(flat, window, axis=0)  # (T−W+1, D, W)
    coefficients = windows @ np.linalg.pinv(basis).T  # (T−W+1, D, 3)
    half = window // 2
    start = np.clip(np.arange(steps) - half, 0, steps - window)
    position = (np.arange(steps) - start)[:, None].astype(np.float64)
    c = coefficients[start]
    smoothed = c[..., 0] + c[..., 1] * position + c[..., 2] * position**2
    second = 2.0 * c[..., 2] / dt**2
    return smoothed.reshape(values.shape), second.reshape(values.shape)


def _fill_invalid(vectors: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each invalid step takes the last valid step's vector before it, or (for steps before the
    first valid one) the first valid step's."""
    index = np.where(valid, np.arange(len(valid)), -1)
    index = np.maximum.accumulate(index)
    index[index < 0] = int(np.argmax(valid))
    return vectors[index]


def segment_frames(
    positions: np.ndarray,
    origin: int,
    axis_to: int,
    across: int,
    *,
    min_angle_deg: float = 5.0,
) -> np.ndarray:
    """Orthonormal segment frames from three joints per step (Gram–Schmidt).

    Column 0 (x) is the unit vector from ``origin`` to ``axis_to``; column 1 (y) is the part of
    ``origin`` → ``across`` orthogonal to x, normalised; column 2 (z) is x × y, so each frame
    is a rotation (det +1) whose columns are the segment's axes in world coordinates: a world
    vector ``v`` reads ``R.T @ v`` in the segment frame.

    Degenerate steps: a step whose x axis is shorter than 1e-9 takes the x axis of the last
    valid step before it (of the first valid step, for leading steps). A step whose across
    vector lies within ``min_angle_deg`` of the x axis (collinear joints: a straight arm) keeps
    the across vector of the last such valid step (first, for leading steps), re-orthogonalised
    against its own x axis, so the roll holds still instead of jumping. Where that is collinear
    too, or no step has a usable across vector, the world axis least aligned with x is used.

    Args:
        positions: ``(T, J, 3)`` joint positions.
        origin: Joint index of the x axis' start.
        axis_to: Joint index the x axis points to.
        across: Joint index that fixes the roll.
        min_angle_deg: Smallest angle between x and the across vector for a step's own
            across vector to be used.

    Returns:
        ``(T, 3, 3)`` float64 rotation matrices.

    Raises:
        DcatError: ``positions`` not ``(T, J, 3)``, a joint index out of range, or an x axis of
            zero length at every step.
    """
    positions = _check_positions(positions)
    joints = positions.shape[1]
    for name, index in (("origin", origin), ("axis_to", axis_to), ("across", across)):
        if not 0 <= index < joints:
            raise DcatError(f"segment_frames: {name} joint {index} outside 0–{joints - 1}")
    axis = positions[:, axis_to] - positions[:, origin]
    length = np.linalg.norm(axis, axis=1)
    valid_axis = length > 1e-9
    if not valid_axis.any():
        raise DcatError(
            f"segment_frames: joints {origin} and {axis_to} coincide at every step of "
            f"positions {positions.shape}; no segment axis"
        )
    x = _fill_invalid(axis / np.where(valid_axis, length, 1.0)[:, None], valid_axis)

    def orthogonal(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The part of ``vectors`` orthogonal to x, and whether it clears ``min_angle_deg``."""
        part = vectors - np.sum(vectors * x, axis=1, keepdims=True) * x
        size = np.linalg.norm(vectors, axis=1)
        ok = np.linalg.norm(part, axis=1) > np.sin(np.radians(min_angle_deg)) * size
        return part, ok & (size > 1e-9)

    toward = positions[:, across] - positions[:, origin]
    part, ok = orthogonal(toward)
    if ok.any() and not ok.all():
        part_held, ok_held = orthogonal(_fill_invalid(toward, ok))
        part = np.where(ok[:, None], part, part_held)
        ok = ok | ok_held
    if not ok.all():
        # The world axis least aligned with x always leaves an orthogonal part of ≥ √(2/3).
        fallback = np.eye(3)[np.argmin(np.abs(x), axis=1)]
        part = np.where(ok[:, None], part, orthogonal(fallback)[0])
    y = part / np.linalg.norm(part, axis=1, keepdims=True)
    return np.stack([x, y, np.cross(x, y)], axis=2)


def _check_positions(positions: np.ndarray) -> np.ndarray:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[2] != 3 or positions.shape[1] == 0:
        raise DcatError(
            f"positions must have shape (T, J, 3) (steps, joints, x y z), got {positions.shape}"
        )
    if not np.isfinite(positions).all():
        step, joint, _ = (int(i) for i in np.argwhere(~np.isfinite(positions))[0])
        raise DcatError(
            f"positions {positions.shape} has NaN or Inf values (first at step {step}, "
            f"joint {joint})"
        )
    return positions


def _rotation_log(rotations: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` rotations → ``(N, 3)`` rotation vectors (axis × angle, angle in [0, π])."""
    skew = np.stack(
        [
            rotations[:, 2, 1] - rotations[:, 1, 2],
            rotations[:, 0, 2] - rotations[:, 2, 0],
            rotations[:, 1, 0] - rotations[:, 0, 1],
        ],
        axis=1,
    )
    sine = np.linalg.norm(skew, axis=1) / 2  # the skew part is 2 sin(θ) · axis
    cosine = (np.trace(rotations, axis1=1, axis2=2) - 1) / 2
    angle = np.arctan2(sine, cosine)
    # θ / sin θ → 1 as θ → 0; near θ = π the axis is ill-defined, far beyond any body's turn
    # in one step at the rates skeletons are captured.
    scale = np.where(sine > 1e-12, angle / np.maximum(sine, 1e-12), 1.0)
    return skew / 2 * scale[:, None]


def _resolve(segment: str | Segment, joint_map: JointMap, joints: int) -> tuple[Segment, dict]:
    if isinstance(segment, str):
        if segment not in SEGMENTS:
            raise DcatError(
                f"unknown segment {segment!r}; known: {sorted(SEGMENTS)}"
                + did_you_mean([segment], SEGMENTS)
            )
        segment = SEGMENTS[segment]
    elif not isinstance(segment, Segment):
        raise DcatError(f"segment must be a name in SEGMENTS or a Segment, got {segment!r}")
    missing = [name for name in segment.joints() if name not in joint_map]
    if missing:
        raise DcatError(
            f"segment {segment} uses joints {sorted(set(missing))} that the joint map does not "
            f"name (it has {sorted(joint_map)})" + did_you_mean(sorted(set(missing)), joint_map)
        )
    index = {name: int(joint_map[name]) for name in segment.joints()}
    outside = {name: i for name, i in index.items() if not 0 <= i < joints}
    if outside:
        raise DcatError(f"joint map puts joints {outside} outside the {joints} joints of positions")
    return segment, index


def _check_imu_options(
    steps: int,
    rate_hz: float,
    *,
    smoothing: float,
    metres_per_unit: float,
    gravity: Sequence[float],
    accel_unit: str,
    gyro_unit: str,
) -> np.ndarray:
    """Validate the scalar options of :func:`synthesize_imu`; return gravity as ``(3,)`` float64.

    Raises:
        DcatError: Fewer than 3 steps, a bad rate, smoothing window, scale, gravity or unit.
    """
    if steps < 3:
        raise DcatError(f"positions has {steps} steps; an acceleration needs 3 or more")
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise DcatError(f"rate_hz must be a positive number of frames per second, got {rate_hz}")
    if not (np.isfinite(smoothing) and smoothing >= 0):
        raise DcatError(f"smoothing must be a window in seconds ≥ 0, got {smoothing}")
    if not (np.isfinite(metres_per_unit) and metres_per_unit > 0):
        raise DcatError(f"metres_per_unit must be positive, got {metres_per_unit}")
    gravity_world = np.asarray(gravity, dtype=np.float64)
    if gravity_world.shape != (3,) or not np.isfinite(gravity_world).all():
        raise DcatError(f"gravity must be 3 finite numbers (m/s², world frame), got {gravity}")
    if accel_unit not in ("g", "m/s2"):
        raise DcatError(f"accel_unit must be 'g' or 'm/s2', got {accel_unit!r}")
    if gyro_unit not in ("deg/s", "rad/s"):
        raise DcatError(f"gyro_unit must be 'deg/s' or 'rad/s', got {gyro_unit!r}")
    return gravity_world


def _smoothing_steps(smoothing: float, rate_hz: float, steps: int) -> int:
    """``smoothing`` seconds as an odd window of at least 3 and at most ``steps`` steps."""
    window = 2 * round(smoothing * rate_hz / 2) + 1
    return min(max(window, 3), steps if steps % 2 else steps - 1)


def _body_rates(frames: np.ndarray, dt: float) -> np.ndarray:
    """Body-frame angular velocity per step from ``(T, 3, 3)`` segment frames: ``(T, 3)`` rad/s.

    Each interval ``t → t + 1`` gives ``log(R_tᵀ R_{t+1}) / dt``; inner steps average the
    intervals on either side so the output keeps all ``T`` steps, the ends take their one.
    """
    step_rotations = np.einsum("tji,tjk->tik", frames[:-1], frames[1:])  # R_tᵀ R_{t+1}
    rates = _rotation_log(step_rotations) / dt  # (T−1, 3), body frame
    gyro = np.empty((len(frames), 3))
    gyro[0], gyro[-1] = rates[0], rates[-1]
    gyro[1:-1] = (rates[:-1] + rates[1:]) / 2
    return gyro


def _sensor_frames(
    positions: np.ndarray, segment: Segment, index: Mapping[str, int], min_angle_deg: float
) -> np.ndarray:
    """``(T, 3, 3)`` frames of ``segment`` from ``(T, J, 3)`` positions, joints found by name."""
    return segment_frames(
        positions,
        index[segment.origin],
        index[segment.axis_to],
        index[segment.across],
        min_angle_deg=min_angle_deg,
    )


def _in_units(accel: np.ndarray, gyro: np.ndarray, accel_unit: str, gyro_unit: str) -> np.ndarray:
    """``(T, 3)`` m/s² and ``(T, 3)`` rad/s → ``(T, 6)`` in the requested units."""
    if accel_unit == "g":
        accel = accel / STANDARD_GRAVITY
    if gyro_unit == "deg/s":
        gyro = np.degrees(gyro)
    return np.concatenate([accel, gyro], axis=1)


def synthesize_imu(
    positions: np.ndarray,
    rate_hz: float,
    segment: str | Segment,
    *,
    joint_map: JointMap = KINECT_V1_JOINT_MAP,
    smoothing: float = 0.2,
    gravity: Sequence[float] = (0.0, -STANDARD_GRAVITY, 0.0),
    metres_per_unit: float = 1.0,
    accel_unit: Literal["g", "m/s2"] = "g",
    gyro_unit: Literal["deg/s", "rad/s"] = "deg/s",
    min_angle_deg: float = 5.0,
) -> np.ndarray:
    """A virtual IMU on a body segment: accelerometer and gyroscope, one reading per step.

    With ``R_t`` the segment frame (:func:`segment_frames`, on smoothed positions), ``p_t`` the
    sensor site's position and ``Δt = 1 / rate_hz``:

    * accelerometer ``f_t = R_tᵀ (p̈_t − g)``: the specific force, so a sensor at rest reads
      ``|g|`` pointing up; ``p̈`` is the second derivative of a least-squares parabola over
      ``smoothing`` seconds (:func:`local_quadratic`, Savitzky–Golay);
    * gyroscope ``ω``: the body-frame angular velocity, ``log(R_tᵀ R_{t+1}) / Δt`` for the
      interval from ``t`` to ``t + 1``; step ``t`` takes the mean of the intervals on either
      side of it, and the first (last) step its one interval's, so the output keeps all ``T``
      steps.

    The segment's axes are a convention built from joints, not a real device's axes; a real
    sensor strapped on differs by a fixed rotation, which leaves magnitudes unchanged.

    Args:
        positions: ``(T, J, 3)`` joint positions in the capture device's world frame, ``T ≥ 3``.
        rate_hz: Skeleton frames per second.
        segment: A name in :data:`SEGMENTS` or a :class:`Segment`.
        joint_map: Joint name → index in ``positions`` (default: Kinect v1, UTD-MHAD).
        smoothing: Savitzky–Golay window in seconds, rounded to an odd number of steps, at
            least 3 (``0`` gives the plain central second difference) and at most ``T``.
        gravity: Gravitational acceleration in the world frame, m/s²; the default suits a
            Kinect's camera frame, whose y axis points up.
        metres_per_unit: Metres per unit of ``positions`` (e.g. 0.001 for millimetres).
        accel_unit: ``"g"`` (of :data:`STANDARD_GRAVITY`) or ``"m/s2"``.
        gyro_unit: ``"deg/s"`` or ``"rad/s"``.
        min_angle_deg: Collinearity threshold of :func:`segment_frames`.

    Returns:
        ``(T, 6)`` float64: accelerometer x, y, z, then gyroscope x, y, z
        (:data:`IMU_CHANNELS`) in the segment frame.

    Raises:
        DcatError: Bad ``positions`` shape or values, fewer than 3 steps, an unknown segment or
            joint name, a bad rate, gravity, scale or unit.
    """
    positions = _check_positions(positions)
    steps = positions.shape[0]
    gravity_world = _check_imu_options(
        steps,
        rate_hz,
        smoothing=smoothing,
        metres_per_unit=metres_per_unit,
        gravity=gravity,
        accel_unit=accel_unit,
        gyro_unit=gyro_unit,
    )
    segment, index = _resolve(segment, joint_map, positions.shape[1])

    dt = 1.0 / rate_hz
    window = _smoothing_steps(smoothing, rate_hz, steps)
    smoothed, second = local_quadratic(positions * metres_per_unit, window, dt)

    frames = _sensor_frames(smoothed, segment, index, min_angle_deg)
    site = [index[name] for name in segment.site]
    specific_force = second[:, site].mean(axis=1) - gravity_world
    accel = np.einsum("tji,tj->ti", frames, specific_force)
    return _in_units(accel, _body_rates(frames, dt), accel_unit, gyro_unit)


def synthesize_imu_channels(
    skeleton: np.ndarray, rate_hz: float, segment: str | Segment, **options
) -> np.ndarray:
    """:func:`synthesize_imu` in dcat's layouts: skeleton ``(3J, T)`` → IMU ``(6, T)``.

    Args:
        skeleton: ``(3J, T)``, joint by joint x, y, z (a ``skeleton`` sample of UTD-MHAD).
        rate_hz: Steps per second of ``skeleton``.
        segment: As for :func:`synthesize_imu`.
        **options: Keyword options of :func:`synthesize_imu`.

    Returns:
        ``(6, T)`` float64 in :data:`IMU_CHANNELS` order.
    """
    return imu_to_channels(
        synthesize_imu(positions_from_channels(skeleton), rate_hz, segment, **options)
    )
