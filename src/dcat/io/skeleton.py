"""Skeleton layouts as data, and per-sample body normalisation (numpy only).

A :class:`SkeletonLayout` says what a skeleton's channels mean: the joints' names in channel
order, the parent of each joint (the kinematic tree, rooted at the root joint), the root joint
(the body's origin), the pair of joints whose distance is the body's scale (the torso) and the
vertical axis. Nothing about a particular sensor is written in code: the shipped layouts are
entries of :data:`LAYOUTS`, and a user declares their own in the configuration with the same
fields (:meth:`SkeletonLayout.from_mapping`).

Channels are laid out joint by joint, as everywhere in dcat (:func:`dcat.io.normalization.
center_positions`): joint 0's x, y, z, then joint 1's, ... A sample ``(C, T)`` has
``C = joints × dims``.

Shipped layouts (0-based here, in each SDK's own joint order):

* ``kinect_v1``: 20 joints of the Kinect for Windows v1 SDK, in UTD-MHAD's
  ``Skeleton_joint_order.txt`` order; root ``hip_center``.
* ``kinect_v2``: 25 joints of the Kinect v2 ``JointType`` enum (bones as in the SDK's
  BodyBasics sample); root ``spine_base``.
* ``azure_kinect``: 32 joints of the Azure Kinect body tracking ``k4abt_joint_id_t`` enum
  (parents from its joint hierarchy table); root ``pelvis``.
* ``mediapipe_pose``: 33 MediaPipe Pose landmarks. MediaPipe defines connections, not a tree,
  and has no pelvis: the tree here is rooted at ``left_hip``, the right hip hangs from it, each
  shoulder from its hip and the face from the nose, which hangs from the left shoulder.

All four report ``y`` as the vertical axis (Kinect v1/v2 up, Azure Kinect and MediaPipe down;
a rotation about it is the same either way).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcat.errors import DcatError, did_you_mean

__all__ = [
    "AXES",
    "LAYOUTS",
    "SkeletonLayout",
    "body_normalize",
    "get_layout",
    "parse_body_mode",
]

AXES = ("x", "y", "z")

_BODY_MODE = re.compile(r"^body:(\d+):(\d+):(\d+):([23])$")


@dataclass(frozen=True)
class SkeletonLayout:
    """The joints of a skeleton, their tree, its root, its body scale and its vertical axis.

    Attributes:
        name: A name for messages (``kinect_v1``, or ``custom``).
        joints: Joint names in channel order, unique.
        parents: ``parents[j]`` is the index of joint ``j``'s parent; the root's is ``-1``.
        root: Index of the root joint (the origin of root-centring).
        scale: Two joint indices whose mean distance over a sample is the body's size.
        up_axis: Index of the vertical coordinate (0 x, 1 y, 2 z); rotations turn about it.
        dims: Coordinates per joint, 3 (x, y, z) or 2 (x, y).

    Raises:
        DcatError: Duplicate joint names, a parent list of another length, a parent out of
            range, a cycle, a joint not reached from the root, or a scale pair that is one joint.
    """

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    root: int
    scale: tuple[int, int]
    up_axis: int = 1
    dims: int = 3

    def __post_init__(self) -> None:
        where = f"skeleton layout {self.name!r}"
        count = len(self.joints)
        if count < 2 or len(set(self.joints)) != count:
            raise DcatError(f"{where}: needs at least 2 joints with unique names")
        if len(self.parents) != count:
            raise DcatError(
                f"{where}: parents lists {len(self.parents)} entries for {count} joints"
            )
        if self.dims not in (2, 3) or not 0 <= self.up_axis < self.dims:
            raise DcatError(
                f"{where}: dims must be 2 or 3 and up_axis one of its axes, got dims "
                f"{self.dims}, up_axis {self.up_axis}"
            )
        for index in (self.root, *self.scale):
            if not 0 <= index < count:
                raise DcatError(f"{where}: joint index {index} outside 0–{count - 1}")
        if self.scale[0] == self.scale[1]:
            raise DcatError(f"{where}: the scale pair must be two joints, got {self.scale}")
        _check_tree(where, self.joints, self.parents, self.root)

    @property
    def channels(self) -> int:
        """Channels of one frame: ``joints × dims``."""
        return len(self.joints) * self.dims

    def body_mode(self) -> str:
        """The centring mode string of this layout's body normalisation (:func:`body_normalize`),
        as model cards record it: ``body:ROOT:A:B:DIMS``."""
        return f"body:{self.root}:{self.scale[0]}:{self.scale[1]}:{self.dims}"

    def to_dict(self) -> dict[str, Any]:
        """The layout as the configuration writes it (joint names, not indices)."""
        return {
            "joints": list(self.joints),
            "parents": [None if p < 0 else self.joints[p] for p in self.parents],
            "root": self.joints[self.root],
            "scale": [self.joints[i] for i in self.scale],
            "up_axis": AXES[self.up_axis],
            "dims": self.dims,
        }

    @classmethod
    def from_names(
        cls,
        name: str,
        joints: Sequence[str],
        parents: Sequence[str | None] | Mapping[str, str],
        root: str,
        scale: Sequence[str],
        up_axis: str = "y",
        dims: int = 3,
    ) -> SkeletonLayout:
        """A layout written with joint names.

        Args:
            name: A name for messages.
            joints: Joint names in channel order.
            parents: The parent's name of each joint, in joint order (``None`` for the root),
                or a mapping child → parent naming every joint but the root.
            root: The root joint's name.
            scale: The two joints whose distance is the body's size.
            up_axis: ``"x"``, ``"y"`` or ``"z"``.
            dims: 3 or 2.

        Raises:
            DcatError: An unknown joint name (with a "did you mean"), or a layout that is not
                a tree (see the class).
        """
        where = f"skeleton layout {name!r}"
        joints = tuple(str(j) for j in joints)
        index = {joint: i for i, joint in enumerate(joints)}

        def find(joint: str, what: str) -> int:
            if joint not in index:
                hint = did_you_mean([str(joint)], list(joints))
                raise DcatError(f"{where}: {what} {joint!r} is not one of its joints{hint}")
            return index[joint]

        if isinstance(parents, Mapping):
            unknown = [c for c in parents if c not in index]
            if unknown:
                find(unknown[0], "joint")
            named = [parents.get(j) for j in joints]
        else:
            named = list(parents)
        if len(named) != len(joints):
            raise DcatError(f"{where}: parents lists {len(named)} entries for {len(joints)} joints")
        parent_ids = tuple(-1 if p is None else find(p, "parent") for p in named)
        if len(scale) != 2:
            raise DcatError(f"{where}: scale must name two joints, got {list(scale)}")
        if up_axis not in AXES:
            raise DcatError(f"{where}: up_axis must be x, y or z, got {up_axis!r}")
        return cls(
            name,
            joints,
            parent_ids,
            find(root, "root"),
            (find(scale[0], "scale joint"), find(scale[1], "scale joint")),
            AXES.index(up_axis),
            dims,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], name: str = "custom") -> SkeletonLayout:
        """A layout from a configuration mapping with keys ``joints``, ``parents``, ``root``,
        ``scale`` and optionally ``up_axis`` (default ``y``) and ``dims`` (default 3)."""
        known = {"joints", "parents", "root", "scale", "up_axis", "dims"}
        unknown = sorted(set(data) - known)
        missing = sorted({"joints", "parents", "root", "scale"} - set(data))
        if unknown or missing:
            problem = f"unknown key(s) {unknown}" if unknown else f"missing key(s) {missing}"
            raise DcatError(f"skeleton layout {name!r}: {problem}; keys: {sorted(known)}")
        _check_types(name, data)
        return cls.from_names(
            name,
            data["joints"],
            data["parents"],
            data["root"],
            data["scale"],
            data.get("up_axis", "y"),
            data.get("dims", 3),
        )


def _check_types(name: str, data: Mapping[str, Any]) -> None:
    """The value types of a layout mapping, each named when wrong."""

    def names(value: Any, optional: bool = False) -> bool:
        return isinstance(value, list) and all(
            isinstance(v, str) or (optional and v is None) for v in value
        )

    parents = data["parents"]
    problems = {
        "joints": ("a list of joint names", names(data["joints"])),
        "parents": (
            "a list of parent names (null for the root) or a mapping joint → parent",
            names(parents, optional=True)
            or (isinstance(parents, Mapping) and all(isinstance(v, str) for v in parents.values())),
        ),
        "root": ("a joint name", isinstance(data["root"], str)),
        "scale": ("a list of two joint names", names(data["scale"])),
        "up_axis": ("x, y or z", data.get("up_axis", "y") in AXES),
        "dims": (
            "2 or 3",
            data.get("dims", 3) in (2, 3) and not isinstance(data.get("dims"), bool),
        ),
    }
    for key, (wanted, ok) in problems.items():
        if not ok:
            raise DcatError(f"skeleton layout {name!r}: {key} must be {wanted}, got {data[key]!r}")


def _check_tree(where: str, joints: Sequence[str], parents: Sequence[int], root: int) -> None:
    """Every joint reaches the root by following parents; only the root has none."""
    count = len(joints)
    for joint, parent in enumerate(parents):
        if (parent < 0) != (joint == root):
            problem = "has no parent" if parent < 0 else "must have no parent (it is the root)"
            raise DcatError(f"{where}: joint {joints[joint]!r} {problem}")
        if parent >= count:
            raise DcatError(f"{where}: parent {parent} of {joints[joint]!r} is out of range")
    for start in range(count):
        joint, steps = start, 0
        while joint != root:
            joint, steps = parents[joint], steps + 1
            if steps > count:
                raise DcatError(
                    f"{where}: joint {joints[start]!r} never reaches the root (a cycle)"
                )


_KINECT_V1 = SkeletonLayout.from_names(
    "kinect_v1",
    (
        "head", "shoulder_center", "spine", "hip_center",
        "left_shoulder", "left_elbow", "left_wrist", "left_hand",
        "right_shoulder", "right_elbow", "right_wrist", "right_hand",
        "left_hip", "left_knee", "left_ankle", "left_foot",
        "right_hip", "right_knee", "right_ankle", "right_foot",
    ),
    (
        "shoulder_center", "spine", "hip_center", None,
        "shoulder_center", "left_shoulder", "left_elbow", "left_wrist",
        "shoulder_center", "right_shoulder", "right_elbow", "right_wrist",
        "hip_center", "left_hip", "left_knee", "left_ankle",
        "hip_center", "right_hip", "right_knee", "right_ankle",
    ),
    root="hip_center",
    scale=("hip_center", "shoulder_center"),
)  # fmt: skip

_KINECT_V2 = SkeletonLayout.from_names(
    "kinect_v2",
    (
        "spine_base", "spine_mid", "neck", "head",
        "shoulder_left", "elbow_left", "wrist_left", "hand_left",
        "shoulder_right", "elbow_right", "wrist_right", "hand_right",
        "hip_left", "knee_left", "ankle_left", "foot_left",
        "hip_right", "knee_right", "ankle_right", "foot_right",
        "spine_shoulder", "hand_tip_left", "thumb_left", "hand_tip_right", "thumb_right",
    ),
    (
        None, "spine_base", "spine_shoulder", "neck",
        "spine_shoulder", "shoulder_left", "elbow_left", "wrist_left",
        "spine_shoulder", "shoulder_right", "elbow_right", "wrist_right",
        "spine_base", "hip_left", "knee_left", "ankle_left",
        "spine_base", "hip_right", "knee_right", "ankle_right",
        "spine_mid", "hand_left", "wrist_left", "hand_right", "wrist_right",
    ),
    root="spine_base",
    scale=("spine_base", "spine_shoulder"),
)  # fmt: skip

_AZURE_KINECT = SkeletonLayout.from_names(
    "azure_kinect",
    (
        "pelvis", "spine_navel", "spine_chest", "neck",
        "clavicle_left", "shoulder_left", "elbow_left", "wrist_left",
        "hand_left", "handtip_left", "thumb_left",
        "clavicle_right", "shoulder_right", "elbow_right", "wrist_right",
        "hand_right", "handtip_right", "thumb_right",
        "hip_left", "knee_left", "ankle_left", "foot_left",
        "hip_right", "knee_right", "ankle_right", "foot_right",
        "head", "nose", "eye_left", "ear_left", "eye_right", "ear_right",
    ),
    (
        None, "pelvis", "spine_navel", "spine_chest",
        "spine_chest", "clavicle_left", "shoulder_left", "elbow_left",
        "wrist_left", "hand_left", "wrist_left",
        "spine_chest", "clavicle_right", "shoulder_right", "elbow_right",
        "wrist_right", "hand_right", "wrist_right",
        "pelvis", "hip_left", "knee_left", "ankle_left",
        "pelvis", "hip_right", "knee_right", "ankle_right",
        "neck", "head", "head", "head", "head", "head",
    ),
    root="pelvis",
    scale=("pelvis", "neck"),
)  # fmt: skip

_MEDIAPIPE_POSE = SkeletonLayout.from_names(
    "mediapipe_pose",
    (
        "nose", "left_eye_inner", "left_eye", "left_eye_outer",
        "right_eye_inner", "right_eye", "right_eye_outer", "left_ear", "right_ear",
        "mouth_left", "mouth_right", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_heel", "right_heel", "left_foot_index", "right_foot_index",
    ),
    (
        "left_shoulder", "nose", "left_eye_inner", "left_eye",
        "nose", "right_eye_inner", "right_eye", "left_eye_outer", "right_eye_outer",
        "nose", "nose", "left_hip", "right_hip",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_wrist", "right_wrist", "left_wrist", "right_wrist",
        None, "left_hip", "left_hip", "right_hip", "left_knee", "right_knee",
        "left_ankle", "right_ankle", "left_ankle", "right_ankle",
    ),
    root="left_hip",
    scale=("left_hip", "left_shoulder"),
)  # fmt: skip

LAYOUTS: dict[str, SkeletonLayout] = {
    layout.name: layout for layout in (_KINECT_V1, _KINECT_V2, _AZURE_KINECT, _MEDIAPIPE_POSE)
}
"""The shipped layouts by name."""


def get_layout(
    spec: str | Mapping[str, Any] | SkeletonLayout, name: str = "custom"
) -> SkeletonLayout:
    """A shipped layout by name, or a user's from a configuration mapping.

    Raises:
        DcatError: An unknown name (the shipped ones listed) or a bad mapping.
    """
    if isinstance(spec, SkeletonLayout):
        return spec
    if isinstance(spec, str):
        if spec not in LAYOUTS:
            raise DcatError(
                f"unknown skeleton layout {spec!r}; shipped layouts: {sorted(LAYOUTS)}"
                + did_you_mean([spec], sorted(LAYOUTS))
            )
        return LAYOUTS[spec]
    return SkeletonLayout.from_mapping(spec, name)


def parse_body_mode(mode: str) -> tuple[int, int, int, int] | None:
    """``(root, a, b, dims)`` of a ``body:ROOT:A:B:DIMS`` centring mode, ``None`` for another."""
    match = _BODY_MODE.match(mode)
    return None if match is None else tuple(int(g) for g in match.groups())  # type: ignore[return-value]


def body_normalize(
    array: np.ndarray, root: int, scale: tuple[int, int], dims: int = 3
) -> np.ndarray:
    """Per-sample root-centring and body-scale normalisation.

    Each frame's root joint is moved to the origin (the body's place in the room and its
    drift go, the pose and the limbs' motion stay), and each sample is divided by the mean
    distance, over its frames, between the two ``scale`` joints (the torso), so a tall and a
    short subject, or a near and a far one in 2-D, have one size. A sample whose scale joints
    coincide throughout (a degenerate or empty skeleton) is centred but not scaled.

    Args:
        array: ``(N, C, T)`` or ``(C, T)``, channels joint by joint, ``C = joints × dims``.
        root: Index of the root joint.
        scale: Two joint indices.
        dims: Coordinates per joint.

    Returns:
        An array of ``array``'s shape and dtype, in units of the body's size.

    Raises:
        DcatError: A shape that is not joints × dims channels, or a joint index out of range.
    """
    if array.ndim not in (2, 3) or array.shape[-2] % dims:
        raise DcatError(
            f"body normalisation needs (N, C, T) or (C, T) with C a multiple of {dims} "
            f"(joints of {dims} coordinates), got shape {array.shape}"
        )
    joints = array.shape[-2] // dims
    for index in (root, *scale):
        if not 0 <= index < joints:
            raise DcatError(f"body normalisation: joint {index} of {joints} does not exist")
    points = array.reshape(*array.shape[:-2], joints, dims, array.shape[-1]).astype(np.float64)
    centred = points - points[..., root : root + 1, :, :]
    bone = points[..., scale[0], :, :] - points[..., scale[1], :, :]  # (..., dims, T)
    size = np.linalg.norm(bone, axis=-2).mean(axis=-1)  # (...,)
    size = np.where(size > 1e-9, size, 1.0)[..., None, None, None]
    return (centred / size).reshape(array.shape).astype(array.dtype, copy=False)
