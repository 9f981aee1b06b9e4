"""Build the embedded compact copy of UTD-MHAD (inertial + skeleton) shipped inside dcat.

Reads the original release (``Inertial/*.mat``, ``Skeleton/*.mat``) and writes
``src/dcat/embedded/utd_mhad.npz``: every trial at its original length, in float16, concatenated
per modality with offsets. dcat then resamples it exactly as it does the original files::

    python scripts/make_embedded_utd_mhad.py path/to/UTD-MHAD

UTD-MHAD: C. Chen, R. Jafari, N. Kehtarnavaz, "UTD-MHAD: A multimodal dataset for human action
recognition utilizing a depth camera and a wearable inertial sensor", ICIP 2015; free for
research use with that citation.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from dcat.data.utd_mhad import read_inertial, read_skeleton

OUT = Path(__file__).parents[1] / "src" / "dcat" / "embedded" / "utd_mhad.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="UTD-MHAD folder with Inertial/ and Skeleton/")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    pattern = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_inertial\.mat$")
    trials = sorted(
        (tuple(int(g) for g in m.groups()) for p in (args.root / "Inertial").glob("*.mat")
         if (m := pattern.match(p.name))),
        key=lambda t: (t[1], t[0], t[2]),
    )  # fmt: skip
    imu, skeleton = [], []
    for action, subject, trial in trials:
        stem = f"a{action}_s{subject}_t{trial}"
        imu.append(read_inertial(args.root / "Inertial" / f"{stem}_inertial.mat").T)
        skeleton.append(read_skeleton(args.root / "Skeleton" / f"{stem}_skeleton.mat").T)
    trial_ids = np.asarray(trials, dtype=np.int16)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        trials=trial_ids,  # (N, 3): action, subject, trial
        imu=np.concatenate(imu).astype(np.float16),  # (ΣT, 6)
        imu_offsets=np.cumsum([0] + [len(a) for a in imu]).astype(np.int64),
        skeleton=np.concatenate(skeleton).astype(np.float16),  # (ΣF, 60)
        skeleton_offsets=np.cumsum([0] + [len(a) for a in skeleton]).astype(np.int64),
    )
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out}: {len(trials)} trials, {size:.1f} MB")


if __name__ == "__main__":
    main()
