"""UTD-MHAD: the reader on the real files and the embedded compact copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from dcat.data import load_utd_mhad, load_utd_mhad_embedded
from dcat.data.utd_mhad import read_inertial

from conftest import shared_dataset


def test_embedded_copy_loads_without_other_data() -> None:
    data = load_utd_mhad_embedded()
    assert len(data) == 861 and data.num_classes == 27
    assert data.shape("imu") == (6, 128) and data.shape("skeleton") == (60, 48)
    assert sorted(set(data.subjects.tolist())) == list(range(1, 9))
    assert np.bincount(data.labels).min() >= 31  # 32 trials per action, 3 missing in the release
    assert "a8_s1_t4" not in data.recordings and "a1_s1_t1" in data.recordings
    small = load_utd_mhad_embedded(subjects=[2], steps={"imu": 64})
    assert set(small.subjects.tolist()) == {2} and small.shape("imu") == (6, 64)


@pytest.mark.data
def test_embedded_copy_matches_original_files() -> None:
    original = load_utd_mhad(shared_dataset("utd_mhad"), subjects=[1, 4])
    embedded = load_utd_mhad_embedded(subjects=[1, 4])
    assert original.recordings == embedded.recordings
    assert np.array_equal(original.labels, embedded.labels)
    # float16 storage: relative error below 1e-3 of each channel's range
    for modality in ("imu", "skeleton"):
        a, b = original.inputs[modality], embedded.inputs[modality]
        scale = np.abs(a).max(axis=(0, 2), keepdims=True)
        assert np.abs(a - b).max() / scale.max() < 1e-3


def make_replica(tmp_path: Path) -> Path:
    """Two trials (a1_s1_t1, a2_s2_t1) of random values in the release's .mat layout."""
    (tmp_path / "Inertial").mkdir()
    (tmp_path / "Skeleton").mkdir()
    rng = np.random.default_rng(0)
    for action, subject in ((1, 1), (2, 2)):
        stem = f"a{action}_s{subject}_t1"
        scipy.io.savemat(
            tmp_path / "Inertial" / f"{stem}_inertial.mat", {"d_iner": rng.normal(size=(150, 6))}
        )
        scipy.io.savemat(
            tmp_path / "Skeleton" / f"{stem}_skeleton.mat", {"d_skel": rng.normal(size=(20, 3, 50))}
        )
    return tmp_path


def test_reader_on_generated_files_and_errors(tmp_path) -> None:
    make_replica(tmp_path)
    data = load_utd_mhad(tmp_path, steps={"imu": 32, "skeleton": 16})
    assert data.recordings == ["a1_s1_t1", "a2_s2_t1"] and data.labels.tolist() == [0, 1]
    assert data.shape("imu") == (6, 32) and data.shape("skeleton") == (60, 16)
    (tmp_path / "Inertial" / "a3_s1_t1_inertial.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match=r"a3_s1_t1_skeleton\.mat: missing skeleton file"):
        load_utd_mhad(tmp_path)
    with pytest.raises(ValueError, match=r"a3_s1_t1_inertial\.mat: cannot read as a \.mat file"):
        read_inertial(tmp_path / "Inertial" / "a3_s1_t1_inertial.mat")
    scipy.io.savemat(tmp_path / "Inertial" / "a3_s1_t1_inertial.mat", {"d_iner": np.ones((9, 4))})
    with pytest.raises(ValueError, match=r"d_iner must have shape \(N ≥ 2, 6\), got \(9, 4\)"):
        read_inertial(tmp_path / "Inertial" / "a3_s1_t1_inertial.mat")
    scipy.io.savemat(tmp_path / "Inertial" / "a3_s1_t1_inertial.mat", {"other": np.ones(3)})
    with pytest.raises(ValueError, match=r"variable 'd_iner' not found \(has \['other'\]\)"):
        read_inertial(tmp_path / "Inertial" / "a3_s1_t1_inertial.mat")
    with pytest.raises(ValueError, match=r"UTD-MHAD folder .*Nope.* not found"):
        load_utd_mhad(tmp_path / "Nope")
