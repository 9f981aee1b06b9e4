"""A virtual inertial modality synthesised from a skeleton modality of the same samples.

Each sample's skeleton ``(3J, T_s)`` becomes a virtual IMU ``(6, T_s)`` on a body segment
(:func:`dcat.io.virtual_imu.synthesize_imu_channels`), resampled to the steps of a real inertial
modality (``like``) so that the virtual and the real windows are interchangeable inputs of one
network. The two modalities are time-synchronised windows of one interval, so the skeleton's
rate is taken from that interval: ``T_s`` steps over ``like``'s window (its steps over its
rate). That keeps accelerations in the real sensor's time base even where a reader's nominal
skeleton rate is off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dcat.data.paired import LazyArray, PairedDataset, StreamInfo
from dcat.errors import DcatError
from dcat.io.resample import resample_linear
from dcat.io.virtual_imu import IMU_CHANNELS, KINECT_V1_JOINTS, joint_map, synthesize_imu_channels

__all__ = ["with_virtual_imu"]


def with_virtual_imu(
    data: PairedDataset,
    name: str,
    base: str,
    like: str,
    *,
    segment: str | None = None,
    placement: Mapping[int, str] | None = None,
    joints: Sequence[str] = KINECT_V1_JOINTS,
    smoothing: float = 0.2,
) -> PairedDataset:
    """``data`` plus a modality ``name``: a virtual IMU from the skeleton ``base``.

    Args:
        data: The data set (raw values: positions in metres, before any normalisation).
        name: The new modality.
        base: A skeleton series ``(N, 3J, T_s)``, joint by joint x, y, z, in the order ``joints``.
        like: A real inertial series ``(N, 6, T)`` whose steps, rate and channel order the
            virtual one takes (accelerometer in g, gyroscope in deg/s).
        segment: One body segment for every sample (a name of
            :data:`dcat.io.virtual_imu.SEGMENTS`).
        placement: Or: the segment of each class (label → segment name), where a data set
            documents that the sensor was worn elsewhere for some classes. A per-class placement
            reads the labels, so such a modality may only serve as training data.
        joints: Joint names of ``base``, in order (default: Kinect v1, 20 joints).
        smoothing: Savitzky–Golay window in seconds for the second derivative.

    Returns:
        A new data set; ``name`` is ``(N, 6, T)`` float32.

    Raises:
        DcatError: Unknown modalities, a ``base`` that is not ``3 · len(joints)`` channels, a
            ``like`` without 6 channels or a rate, neither or both of ``segment`` and
            ``placement``, a class without a placement, or an unknown segment or joint name.
    """
    where = f"virtual modality {name!r}"
    skeleton, real, rate = _source_series(data, where, base, like, joints)
    segments = _class_segments(data, where, segment, placement)
    steps = real.shape[2]
    # The two series are windows of one interval, so the skeleton's rate follows from it.
    skeleton_rate = skeleton.shape[2] / (steps / rate)
    out = _synthesize_all(
        data,
        where,
        skeleton,
        steps,
        skeleton_rate,
        segment=segment,
        segments=segments,
        joints=joints,
        smoothing=smoothing,
    )
    stream = StreamInfo(
        rate_hz=rate,
        channels=IMU_CHANNELS,
        # deployed on the real sensor it imitates: that sensor's recordings
        recording_rate_hz=data.stream(like).recording_rate_hz,
        resampled=data.stream(like).resampled,
        note=f"virtual IMU from {base!r} ({'per-class placement' if placement else segment})",
    )
    return data.with_modality(name, out, stream)


def _source_series(
    data: PairedDataset, where: str, base: str, like: str, joints: Sequence[str]
) -> tuple[np.ndarray, np.ndarray | LazyArray, float]:
    """The skeleton and real inertial series, checked, and the real series' rate.

    Returns:
        The skeleton ``(N, 3J, T_s)``, the inertial series ``(N, 6, T)`` and its rate in Hz.

    Raises:
        DcatError: An unknown modality, a skeleton not in memory or not ``3 · len(joints)``
            channels, an inertial series without 6 channels or without a rate.
    """
    for modality in (base, like):
        if modality not in data.modalities:
            raise DcatError(
                f"{where}: modality {modality!r} is not in the data set {data.modalities}"
            )
    skeleton, real = data.inputs[base], data.inputs[like]
    if not isinstance(skeleton, np.ndarray) or skeleton.ndim != 3:
        raise DcatError(f"{where}: {base!r} must be a series (N, 3J, T) held in memory")
    if skeleton.shape[1] != 3 * len(joints):
        raise DcatError(
            f"{where}: {base!r} has {skeleton.shape[1]} channels, but {len(joints)} joints of "
            f"x, y, z need {3 * len(joints)}"
        )
    if real.ndim != 3 or real.shape[1] != len(IMU_CHANNELS):
        raise DcatError(
            f"{where}: {like!r} must be an inertial series (N, 6, T) "
            f"({', '.join(IMU_CHANNELS)}), got shape {tuple(real.shape)}"
        )
    rate = data.stream(like).rate_hz
    if rate is None:
        raise DcatError(f"{where}: {like!r} has no known rate, so the window's duration is unknown")
    return skeleton, real, rate


def _class_segments(
    data: PairedDataset,
    where: str,
    segment: str | None,
    placement: Mapping[int, str] | None,
) -> dict[int, str]:
    """Label → segment name of a per-class ``placement`` (empty with one ``segment``).

    Raises:
        DcatError: Neither or both of ``segment`` and ``placement``, or a class of ``data``
            without a placement.
    """
    if (segment is None) == (placement is None):
        raise DcatError(f"{where}: give exactly one of segment and placement")
    segments = dict(placement) if placement is not None else {}
    missing = sorted({int(c) for c in np.unique(data.labels)} - set(segments))
    if placement is not None and missing:
        raise DcatError(f"{where}: placement has no segment for class(es) {missing}")
    return segments


def _synthesize_all(
    data: PairedDataset,
    where: str,
    skeleton: np.ndarray,
    steps: int,
    skeleton_rate: float,
    *,
    segment: str | None,
    segments: Mapping[int, str],
    joints: Sequence[str],
    smoothing: float,
) -> np.ndarray:
    """A virtual IMU per sample, resampled to ``steps``.

    Args:
        data: The data set (labels choose the segment, recordings name a failing sample).
        where: Start of every message.
        skeleton: ``(N, 3J, T_s)`` joint positions.
        steps: Steps ``T`` of the output.
        skeleton_rate: Steps per second of ``skeleton``.
        segment: One segment for every sample, or ``None`` to use ``segments``.
        segments: Label → segment name.
        joints: Joint names of ``skeleton``, in order.
        smoothing: Savitzky–Golay window in seconds.

    Returns:
        ``(N, 6, T)`` float32.

    Raises:
        DcatError: Repeated joint names, or a sample that cannot be synthesised (named).
    """
    names = joint_map(joints)
    out = np.empty((len(data), len(IMU_CHANNELS), steps), dtype=np.float32)
    for i, label in enumerate(data.labels):
        where_on = segment if segment is not None else segments[int(label)]
        try:
            imu = synthesize_imu_channels(
                skeleton[i], skeleton_rate, where_on, joint_map=names, smoothing=smoothing
            )
        except DcatError as err:
            raise DcatError(f"{where}: sample {data.recordings[i]!r}: {err}") from err
        out[i] = resample_linear(imu, steps)
    return out
