"""ID and OOD splits: disjointness, stratification, explicit subject lists, errors, saving."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcat.data import Split, make_split
from dcat.errors import DcatError

LABELS = np.tile(np.arange(4), 40)  # 160 samples, 4 balanced classes
SUBJECTS = np.repeat(np.arange(1, 9), 20)  # 8 subjects × 20


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_ood_split_is_subject_disjoint(seed: int) -> None:
    split = make_split(LABELS, SUBJECTS, "ood", seed=seed, test_size=0.25, val_size=0.2)
    parts = [set(SUBJECTS[idx]) for idx in (split.train, split.val, split.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sorted(np.concatenate([split.train, split.val, split.test])) == list(range(160))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_id_split_is_stratified_and_shares_subjects(seed: int) -> None:
    split = make_split(LABELS, SUBJECTS, "id", seed=seed, test_size=0.25, val_size=0.2)
    assert len(split.test) == 40
    assert np.bincount(LABELS[split.test]).tolist() == [10, 10, 10, 10]
    assert set(SUBJECTS[split.train]) & set(SUBJECTS[split.test])
    all_idx = np.concatenate([split.train, split.val, split.test])
    assert len(set(all_idx.tolist())) == 160


def test_explicit_cross_subject_protocol() -> None:
    split = make_split(
        LABELS, SUBJECTS, "ood", seed=3, train_subjects=[1, 3, 5, 7], test_subjects=[2, 4, 6, 8]
    )
    assert set(SUBJECTS[split.test]) == {2, 4, 6, 8}
    assert set(SUBJECTS[split.train]) | set(SUBJECTS[split.val]) == {1, 3, 5, 7}
    assert len(set(SUBJECTS[split.val])) == 1  # one training subject held out for validation
    fixed = make_split(
        LABELS, SUBJECTS, "ood", train_subjects=[1, 3, 5], val_subjects=[7], test_subjects=[2, 4]
    )
    assert set(SUBJECTS[fixed.val]) == {7} and set(SUBJECTS[fixed.test]) == {2, 4}


def test_same_seed_same_split_and_round_trip(tmp_path) -> None:
    a = make_split(LABELS, SUBJECTS, "ood", seed=5)
    b = make_split(LABELS, SUBJECTS, "ood", seed=5)
    assert all(
        np.array_equal(x, y) for x, y in zip(a.parts().values(), b.parts().values(), strict=True)
    )
    a.save(tmp_path / "split.json", SUBJECTS)
    loaded = Split.load(tmp_path / "split.json")
    assert loaded.kind == "ood" and loaded.seed == 5
    assert all(
        np.array_equal(x, y)
        for x, y in zip(a.parts().values(), loaded.parts().values(), strict=True)
    )


def test_split_errors() -> None:
    with pytest.raises(ValueError, match="split kind must be 'id' or 'ood', got 'loso'"):
        make_split(LABELS, SUBJECTS, "loso")
    with pytest.raises(ValueError, match=r"test_subjects names subjects not in the data: \[9\]"):
        make_split(LABELS, SUBJECTS, "ood", train_subjects=[1], test_subjects=[9])
    with pytest.raises(ValueError, match=r"subject lists overlap: \[3\]"):
        make_split(LABELS, SUBJECTS, "ood", train_subjects=[1, 3], test_subjects=[3, 4])
    with pytest.raises(ValueError, match="leaves the test part empty"):
        make_split(LABELS, SUBJECTS, "ood", train_subjects=list(range(1, 9)))
    with pytest.raises(ValueError, match="subject lists apply to OOD splits only"):
        make_split(LABELS, SUBJECTS, "id", test_subjects=[1])
    with pytest.raises(ValueError, match=r"test_size must be in \(0, 1\), got 1.5"):
        make_split(LABELS, SUBJECTS, "id", test_size=1.5)
    with pytest.raises(ValueError, match="at least 2 training subjects"):
        make_split(LABELS, SUBJECTS, "ood", train_subjects=[1], test_subjects=[2])


def test_val_rotation_holds_out_each_training_subject_once_in_turn() -> None:
    subjects = np.repeat(np.arange(1, 9), 6)
    labels = np.tile(np.arange(3), 16)
    held = []
    for seed in range(8):
        split = make_split(
            labels, subjects, "ood", seed=seed, val_size=0.25, train_subjects=[1, 3, 5, 7],
            test_subjects=[2, 4, 6, 8], val_rotation=True,
        )  # fmt: skip
        val = sorted(set(subjects[split.val].tolist()))
        assert len(val) == 1 and set(subjects[split.train]) == {1, 3, 5, 7} - set(val)
        held.append(val[0])
    assert sorted(held[:4]) == [1, 3, 5, 7] and held[4:] == held[:4]  # 4 folds, in turn
    with pytest.raises(DcatError, match="needs 4 training subjects"):
        make_split(labels, subjects, "ood", val_size=0.25, train_subjects=[1, 3, 5],
                   test_subjects=[2], val_rotation=True)  # fmt: skip
    with pytest.raises(DcatError, match="val_rotation applies to OOD splits only"):
        make_split(labels, subjects, "id", val_rotation=True)
    with pytest.raises(DcatError, match="give val_subjects or val_rotation, not both"):
        make_split(labels, subjects, "ood", train_subjects=[1, 3], val_subjects=[5],
                   test_subjects=[2], val_rotation=True)  # fmt: skip
