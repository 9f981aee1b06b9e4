"""UTD-MHAD (Chen, Jafari, Kehtarnavaz, ICIP 2015): wearable IMU + Kinect skeleton, 27 actions.

Files as released: ``Inertial/aA_sS_tT_inertial.mat`` (``d_iner``, ``(N, 6)``: acc x, y, z in g,
gyro x, y, z in deg/s, ~50 Hz) and ``Skeleton/aA_sS_tT_skeleton.mat`` (``d_skel``,
``(20, 3, F)`` in metres). The two files of a trial cover the same interval without timestamps,
so each is resampled to a fixed number of steps by relative position.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import scipy.io

from dcat.data.assemble import Recording, Trials, assemble
from dcat.data.paired import PairedDataset
from dcat.data.registry import register_dataset
from dcat.errors import DcatError
from dcat.io.resample import resample_linear

__all__ = [
    "UTD_MHAD_ACTIONS",
    "load_utd_mhad",
    "load_utd_mhad_embedded",
    "read_inertial",
    "read_skeleton",
]

UTD_MHAD_ACTIONS = [
    "right arm swipe to the left", "right arm swipe to the right", "right hand wave",
    "two hand front clap", "right arm throw", "cross arms in the chest", "basketball shoot",
    "right hand draw x", "right hand draw circle (clockwise)",
    "right hand draw circle (counter clockwise)", "draw triangle", "bowling (right hand)",
    "front boxing", "baseball swing from right", "tennis right hand forehand swing",
    "arm curl (two arms)", "tennis serve", "two hand push", "right hand knock on door",
    "right hand catch an object", "right hand pick up and throw", "jogging in place",
    "walking in place", "sit to stand", "stand to sit", "forward lunge (left foot forward)",
    "squat (two arms stretch out)",
]  # fmt: skip
_NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_inertial\.mat$")
IMU_RATE_HZ = 50.0
SKELETON_RATE_HZ = 30.0
_CHANNELS = {
    "imu": ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"),
    "skeleton": tuple(f"joint{j + 1}_{axis}" for j in range(20) for axis in "xyz"),
}


def _load_variable(path: Path, variable: str) -> np.ndarray:
    try:
        contents = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for corrupt or truncated files
        raise DcatError(f"{path}: cannot read as a .mat file ({err})") from err
    if variable not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise DcatError(f"{path}: variable {variable!r} not found (has {found})")
    try:
        array = np.asarray(contents[variable], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DcatError(f"{path}: {variable} is not a numeric array ({err})") from err
    if not np.isfinite(array).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise DcatError(
            f"{path}: {variable} has NaN or Inf values (first at index {index} of shape "
            f"{array.shape})"
        )
    return array


def read_inertial(path: Path) -> np.ndarray:
    """Read one inertial trial as ``(6, N)``: acc x, y, z (g), gyro x, y, z (deg/s)."""
    data = _load_variable(path, "d_iner")
    if data.ndim != 2 or data.shape[1] != 6 or data.shape[0] < 2:
        raise DcatError(f"{path}: d_iner must have shape (N ≥ 2, 6), got {data.shape}")
    return data.T


def read_skeleton(path: Path) -> np.ndarray:
    """Read one skeleton trial as ``(60, F)``: joint j's x, y, z in channels 3j, 3j+1, 3j+2."""
    data = _load_variable(path, "d_skel")
    if data.ndim != 3 or data.shape[:2] != (20, 3) or data.shape[2] < 2:
        raise DcatError(f"{path}: d_skel must have shape (20, 3, F ≥ 2), got {data.shape}")
    return data.reshape(60, data.shape[2])


EMBEDDED = Path(__file__).parents[1] / "embedded" / "utd_mhad.npz"


@register_dataset(
    "utd_mhad_embedded",
    summary="UTD-MHAD shipped inside dcat: wrist IMU + Kinect skeleton, 27 actions, 8 subjects",
)
def load_utd_mhad_embedded(
    *, steps: dict[str, int] | None = None, subjects: list[int] | None = None
) -> PairedDataset:
    """UTD-MHAD from the compact copy shipped inside dcat (no download, no other data needed).

    The copy holds all 861 trials at their original lengths in float16 (written by
    ``scripts/make_embedded_utd_mhad.py``); they are resampled as :func:`load_utd_mhad` does.
    Citation: Chen, Jafari, Kehtarnavaz, ICIP 2015 (free for research use).

    Args:
        steps: As for :func:`load_utd_mhad`.
        subjects: As for :func:`load_utd_mhad`.
    """
    steps = {"imu": 128, "skeleton": 48, **(steps or {})}
    with np.load(EMBEDDED, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    # rows of (action, subject, number)
    index = {
        cast(tuple[int, int, int], tuple(int(v) for v in t)): i
        for i, t in enumerate(arrays["trials"])
    }
    trials = sorted(index, key=lambda t: (t[1], t[0], t[2]))
    if subjects is not None:
        trials = [t for t in trials if t[1] in set(subjects)]
    if not trials:
        raise DcatError(f"no embedded UTD-MHAD trials for subjects {subjects} (subjects are 1–8)")

    def read(trial: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        i = index[trial]
        imu = arrays["imu"][arrays["imu_offsets"][i] : arrays["imu_offsets"][i + 1]]
        joints = arrays["skeleton"][
            arrays["skeleton_offsets"][i] : arrays["skeleton_offsets"][i + 1]
        ]
        return imu.T.astype(np.float64), joints.T.astype(np.float64)

    return _build(trials, read, steps)


@register_dataset(
    "utd_mhad", summary="UTD-MHAD download (Inertial/, Skeleton/ .mat files): IMU + skeleton"
)
def load_utd_mhad(
    root: str | Path,
    *,
    steps: dict[str, int] | None = None,
    subjects: list[int] | None = None,
) -> PairedDataset:
    """Read UTD-MHAD into a :class:`PairedDataset` with modalities ``imu`` and ``skeleton``.

    Args:
        root: Folder with ``Inertial/`` and ``Skeleton/``.
        steps: Steps per modality after resampling; default ``{"imu": 128, "skeleton": 48}``
            (the median trial has ~160 IMU samples and ~60 frames).
        subjects: Keep only these subjects (1–8); all by default.

    Returns:
        ``imu`` ``(N, 6, steps["imu"])`` and ``skeleton`` ``(N, 60, steps["skeleton"])``, labels
        0–26 (action − 1), subjects 1–8, recordings ``"aA_sS_tT"``.

    Raises:
        DcatError: A missing folder, a trial without its pair, or an unreadable file (named).
    """
    root = Path(root)
    steps = {"imu": 128, "skeleton": 48, **(steps or {})}
    inertial_dir, skeleton_dir = root / "Inertial", root / "Skeleton"
    for folder in (inertial_dir, skeleton_dir):
        if not folder.is_dir():
            raise DcatError(
                f"UTD-MHAD folder {folder} not found (expected Inertial/ and Skeleton/)"
            )
    trials: list[tuple[int, int, int]] = []
    for path in inertial_dir.glob("*.mat"):
        match = _NAME.match(path.name)
        if match:
            action, subject, number = (int(g) for g in match.groups())  # _NAME has 3 groups
            trials.append((action, subject, number))
    trials.sort(key=lambda t: (t[1], t[0], t[2]))
    if subjects is not None:
        trials = [t for t in trials if t[1] in set(subjects)]
    if not trials:
        raise DcatError(f"no UTD-MHAD trials (aA_sS_tT_inertial.mat) found in {inertial_dir}")

    def read(trial: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        action, subject, number = trial
        stem = f"a{action}_s{subject}_t{number}"
        skeleton_path = skeleton_dir / f"{stem}_skeleton.mat"
        if not skeleton_path.is_file():
            raise DcatError(f"{skeleton_path}: missing skeleton file for trial {stem}")
        return read_inertial(inertial_dir / f"{stem}_inertial.mat"), read_skeleton(skeleton_path)

    return _build(trials, read, steps)


def _build(
    trials: list[tuple[int, int, int]],
    read: Callable[[tuple[int, int, int]], tuple[np.ndarray, np.ndarray]],
    steps: dict[str, int],
) -> PairedDataset:
    """Resample each trial's ``(6, N)`` IMU and ``(60, F)`` skeleton; ``read(trial)`` gives them."""
    return assemble(
        (_trial(trial, read, steps) for trial in trials),
        UTD_MHAD_ACTIONS,
        name="utd_mhad",
        streams={
            m: Trials(steps[m], _CHANNELS[m], f"{native:g} Hz", native_hz=native)
            for m, native in (("imu", IMU_RATE_HZ), ("skeleton", SKELETON_RATE_HZ))
        },
    )


def _trial(
    trial: tuple[int, int, int],
    read: Callable[[tuple[int, int, int]], tuple[np.ndarray, np.ndarray]],
    steps: dict[str, int],
) -> Recording:
    """One trial ``(action, subject, number)``: ``imu`` ``(6, steps["imu"])`` and ``skeleton``
    ``(60, steps["skeleton"])``."""
    action, subject, number = trial
    stem = f"a{action}_s{subject}_t{number}"
    if not 1 <= action <= len(UTD_MHAD_ACTIONS):
        raise DcatError(f"{stem}: action {action} outside 1–{len(UTD_MHAD_ACTIONS)}")
    inertial, joints = read(trial)
    return Recording(
        {
            "imu": resample_linear(inertial, steps["imu"]),
            "skeleton": resample_linear(joints, steps["skeleton"]),
        },
        action - 1,
        subject,
        stem,
        seconds={
            "imu": inertial.shape[1] / IMU_RATE_HZ,
            "skeleton": joints.shape[1] / SKELETON_RATE_HZ,
        },
    )
