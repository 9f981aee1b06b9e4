"""Split configs name subjects as the data writes them: names (``anna``) or numbers (``1``).

The data layer resolves the written names to subject ids (``resolve_subjects``), the runner
splits on the ids, and the split files list each part's subjects by name again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from dcat.cli import main
from dcat.data import PairedDataset, Split, make_split, resolve_subjects, sort_names
from dcat.errors import DcatError
from dcat.experiment.config import ExperimentConfig, SplitConfig, load_config
from test_error_catalogue import _rows, manifest_config, write_manifest

FIELD = "config: splits[0].train_subjects"


def _paired(written: list[str], per_subject: int = 4, ids: list[int] | None = None):
    """Samples of subjects written ``written``, numbered from 0 in that order (as the manifest
    reader numbers them by first appearance) unless ``ids`` are given; 2 classes each."""
    ids = list(range(len(written))) if ids is None else ids
    subjects = np.repeat(ids, per_subject)
    labels = np.tile([0, 1], len(subjects) // 2)
    return PairedDataset(
        {"imu": np.zeros((len(subjects), 3, 4), dtype=np.float32)},
        labels,
        subjects,
        [f"r{i}" for i in range(len(subjects))],
        ["a", "b"],
        subject_names=dict(zip(ids, written, strict=True)),
    )


def _samples_of(data: PairedDataset, names: set[str]) -> list[int]:
    return [i for i, s in enumerate(data.subjects) if data.subject_names[int(s)] in names]


def _split(data: PairedDataset, **written) -> Split:
    lists = {
        field: resolve_subjects(data.subjects, data.subject_names, value, f"config: {field}")
        for field, value in written.items()
    }
    return make_split(data.labels, data.subjects, "ood", subject_names=data.subject_names, **lists)


def test_names_resolve_to_the_samples_of_those_subjects() -> None:
    data = _paired(["anna", "ben", "carl", "dora"])
    assert resolve_subjects(data.subjects, data.subject_names, ["carl", "anna"], FIELD) == [2, 0]
    split = _split(
        data, train_subjects=["anna", "ben"], val_subjects=["carl"], test_subjects=["dora"]
    )
    assert split.train.tolist() == _samples_of(data, {"anna", "ben"})
    assert split.val.tolist() == _samples_of(data, {"carl"})
    assert split.test.tolist() == _samples_of(data, {"dora"})
    saved = split.to_dict(data.subjects, data.subject_names)
    assert saved["train_subjects"] == ["anna", "ben"]
    assert saved["val_subjects"] == ["carl"] and saved["test_subjects"] == ["dora"]


def test_yaml_numbers_name_subjects_written_as_numbers_not_their_ids() -> None:
    # a manifest whose subject column holds 5, 3, 1, ...: ids 0, 1, 2, ... by first appearance
    written = ["5", "3", "1", "7", "2", "8", "4", "6"]
    data = _paired(written)
    assert resolve_subjects(data.subjects, data.subject_names, [1, 3, 5, 7], FIELD) == [2, 1, 0, 3]
    assert resolve_subjects(data.subjects, data.subject_names, ["1", 3], FIELD) == [2, 1]
    split = _split(data, train_subjects=[1, 3, 5, 7], test_subjects=[2, 4, 6, 8])
    assert split.test.tolist() == _samples_of(data, {"2", "4", "6", "8"})
    assert sorted(split.train.tolist() + split.val.tolist()) == _samples_of(
        data, {"1", "3", "5", "7"}
    )
    assert split.to_dict(data.subjects, data.subject_names)["test_subjects"] == ["2", "4", "6", "8"]


def test_ids_without_names_are_named_by_their_numbers() -> None:
    # UTD-MHAD: subject ids 1..8, no subject_names
    subjects = np.repeat(np.arange(1, 9), 2)
    assert resolve_subjects(subjects, None, [1, 3, 5, 7], FIELD) == [1, 3, 5, 7]
    assert resolve_subjects(subjects, {}, ["8"], FIELD) == [8]
    split = make_split(
        np.tile([0, 1], 8), subjects, "ood", train_subjects=[1, 3, 5], test_subjects=[2]
    )
    assert split.to_dict(subjects)["test_subjects"] == ["2"]


def test_a_number_does_not_name_a_zero_padded_subject() -> None:
    data = _paired(["07", "7"], ids=[70, 7])
    assert resolve_subjects(data.subjects, data.subject_names, [7], FIELD) == [7]
    assert resolve_subjects(data.subjects, data.subject_names, ["07"], FIELD) == [70]
    padded = _paired(["005", "006"], ids=[5, 6])  # the cough set's folder names
    with pytest.raises(DcatError) as caught:
        resolve_subjects(padded.subjects, padded.subject_names, [5], FIELD)
    assert str(caught.value) == (
        f"{FIELD}: subject 5 is not in the data set; its subjects are: 005, 006 (names with "
        "leading zeros are text: quote them, e.g. '005'; YAML reads an unquoted 010 as the "
        "number 8)"
    )


def test_an_unknown_subject_is_refused_with_the_subjects_present() -> None:
    data = _paired(["anna", "ben", "carl", "dora"])
    present = data.subset([i for i, s in enumerate(data.subjects) if s != 2])  # no carl
    assert present.subject_names[2] == "carl"  # still named, but without samples
    with pytest.raises(DcatError) as caught:
        resolve_subjects(present.subjects, present.subject_names, ["anna", "carl"], FIELD)
    assert str(caught.value) == (
        f"{FIELD}: subject 'carl' is not in the data set; its subjects are: anna, ben, dora"
    )
    with pytest.raises(DcatError, match=r"subject 'ana' is not .* dora; did you mean 'anna'\?$"):
        resolve_subjects(present.subjects, present.subject_names, ["ana"], FIELD)
    # an index of the old 0-based form names no subject
    with pytest.raises(DcatError, match=r"subject 0 is not in the data set; its subjects are: a"):
        resolve_subjects(present.subjects, present.subject_names, [0], FIELD)


def test_subjects_are_listed_in_natural_order() -> None:
    assert sort_names(["s10", "s2", "s1", "S3"]) == ["s1", "s2", "S3", "s10"]
    assert sort_names(["10", "9", "1", "07", "7"]) == ["1", "07", "7", "9", "10"]
    numbers = np.arange(1, 12)
    with pytest.raises(DcatError, match=r"its subjects are: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11$"):
        resolve_subjects(numbers, None, [12], FIELD)
    many = np.arange(100)
    with pytest.raises(DcatError, match=r"are: 0, 1, .*, 29, … \(100 in all\)$"):
        resolve_subjects(many, None, ["x"], FIELD)


def test_a_subject_listed_twice_is_refused() -> None:
    data = _paired(["anna", "ben", "1"])
    with pytest.raises(DcatError, match=rf"^{re.escape(FIELD)}: subject 'anna' is listed twice$"):
        resolve_subjects(data.subjects, data.subject_names, ["anna", "ben", "anna"], FIELD)
    with pytest.raises(DcatError, match="subject '1' is listed twice"):
        resolve_subjects(data.subjects, data.subject_names, [1, "1"], FIELD)


def test_split_messages_name_the_subjects() -> None:
    data = _paired(["anna", "ben", "carl", "dora"])
    with pytest.raises(DcatError, match=r"subject lists overlap: \[ben\] in two parts"):
        _split(data, train_subjects=["anna", "ben"], test_subjects=["ben"])
    with pytest.raises(DcatError, match=r"\(subjects: train \[anna, ben\]; val \[carl, dora\]; "):
        _split(data, train_subjects=["anna", "ben"], val_subjects=["carl", "dora"])


def test_the_config_takes_names_and_numbers_strictly() -> None:
    split = SplitConfig(kind="ood", train_subjects=["anna", 2], test_subjects=["005"])
    assert split.train_subjects == ["anna", 2] and split.test_subjects == ["005"]
    for bad in (1.5, True, None, [1]):
        with pytest.raises(ValueError, match="a subject is a name or a number"):
            SplitConfig.model_validate({"kind": "ood", "test_subjects": [bad]})


def test_the_avletters_preset_tests_on_verity_and_yi() -> None:
    # speaker ids 9 and 10 of the full release (sorted-name order), named as in the files
    assert load_config("avletters").splits[0].test_subjects == ["Verity", "Yi"]


# ---------------------------------------------------------------------------------------------
# End to end: `dcat experiment` on a tiny manifest


def _manifest_rows(order: tuple[str, ...]) -> list[dict]:
    """The catalogue's rows (subjects s1..s4, classes a and b), subjects first seen in
    ``order`` so that the reader's ids are not the sorted order of the names."""
    rows = _rows()
    return sorted(rows, key=lambda row: order.index(row["subject"]))


def _experiment(tmp: Path, rows: list[dict], split: dict, out: Path) -> tuple[int, Path]:
    manifest = write_manifest(tmp / "data", rows)
    config = manifest_config(
        manifest,
        modalities={"imu": {"encoder": "imu", "options": {"widths": [4, 4, 4]}}},
        transfers=[], reference=False, splits=[{"kind": "ood", **split}],
    )  # fmt: skip
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return main(["experiment", str(path), "--out", str(out)]), out


def test_experiment_on_a_manifest_splits_by_the_names_written(tmp_path: Path, capsys) -> None:
    rows = _manifest_rows(("s3", "s1", "s4", "s2"))  # ids: s3 0, s1 1, s4 2, s2 3
    split = {"train_subjects": ["s1", "s2"], "val_subjects": ["s3"], "test_subjects": ["s4"]}
    code, out = _experiment(tmp_path, rows, split, tmp_path / "out")
    assert code == 0, capsys.readouterr().err
    saved = json.loads((out / "splits" / "ood_seed0.json").read_text())
    assert saved["train_subjects"] == ["s1", "s2"]
    assert saved["val_subjects"] == ["s3"] and saved["test_subjects"] == ["s4"]
    for part, names in (("train", {"s1", "s2"}), ("val", {"s3"}), ("test", {"s4"})):
        assert saved[part] == [i for i, row in enumerate(rows) if row["subject"] in names]
    # the fingerprint records the ids the names resolved to, as it did when configs gave ids
    fingerprint = json.loads((out / "runs/ood/seed0/imu/baseline/fingerprint.json").read_text())
    assert fingerprint["split"]["train_subjects"] == [1, 3]
    assert fingerprint["split"]["test_subjects"] == [2]
    described = yaml.safe_load((out / "config.yaml").read_text())["experiment"]
    assert described["splits"][0]["train_subjects"] == ["s1", "s2"]  # as written


def test_an_unknown_subject_name_fails_before_anything_is_written(tmp_path: Path, capsys) -> None:
    code, out = _experiment(tmp_path, _rows(), {"test_subjects": ["s5"]}, tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == (
        "dcat: error: config: splits[0].test_subjects: subject 's5' is not in the data set; "
        "its subjects are: s1, s2, s3, s4"
    )
    assert not out.exists()


def test_an_old_index_list_that_now_names_other_subjects_is_not_reused(
    tmp_path: Path, capsys
) -> None:
    # subjects written 2, 1, 3, 4: ids 0, 1, 2, 3. Before names, `train_subjects: [1, 2]` meant
    # ids 1 and 2 (written 1 and 3) and `test_subjects: [3]` id 3 (written 4).
    rows = [{**row, "subject": {"s1": "2", "s2": "1"}.get(row["subject"], row["subject"][1:])}
            for row in _rows()]  # fmt: skip
    out = tmp_path / "out"
    # the same split by name: what an older dcat recorded for [1, 2] / [3] (the same ids)
    code, _ = _experiment(tmp_path, rows, {"train_subjects": ["1", "3"], "test_subjects": [4]}, out)
    assert code == 0, capsys.readouterr().err
    fingerprint = json.loads((out / "runs/ood/seed0/imu/baseline/fingerprint.json").read_text())
    assert fingerprint["split"]["train_subjects"] == [1, 2]
    assert fingerprint["split"]["test_subjects"] == [3]
    capsys.readouterr()
    # the same subjects written as YAML numbers: one fingerprint, the model is reused
    code, _ = _experiment(tmp_path, rows, {"train_subjects": [1, 3], "test_subjects": ["4"]}, out)
    assert code == 0 and "(done before)" in capsys.readouterr().out
    # the old config's text now names subjects 1, 2 / 3: another split, refused, not reused
    code, _ = _experiment(tmp_path, rows, {"train_subjects": [1, 2], "test_subjects": [3]}, out)
    err = capsys.readouterr().err
    assert code == 2 and "model(s) there were trained with other settings" in err
    assert "split.train_subjects [1, 2] → [1, 0]" in err and "split.digest" in err


# ---------------------------------------------------------------------------------------------
# A sample no part of the split takes (issue 25): refused when its subject's name is a slip for
# one the split takes (`01` beside `1`); a subject left out of every list on purpose is said


def test_a_subject_written_another_way_is_not_silently_left_out() -> None:
    from dcat.data.splits import left_out, loose_name

    assert [loose_name(n) for n in ("01", " S 007", "Anna", "s10", "0")] == [
        "1",
        "s7",
        "anna",
        "s10",
        "0",
    ]
    data = _paired(["1", "2", "3", "01"])  # subject "01": samples 12..15
    split = _split(data, train_subjects=["1", "2"], test_subjects=["3"])
    assert np.intersect1d(np.arange(12, 16), np.concatenate(list(split.parts().values()))).size == 0
    with pytest.raises(DcatError) as caught:
        left_out(split, data.subjects, data.subject_names, data.recordings)
    assert str(caught.value) == (
        "the ood split (seed 0) leaves sample 12 (recording 'r12') out of every part: its "
        "subject '01' is in no part, subject '1' is; did you mean '1'? (subject names are "
        "compared as written: list '01' as well, or write it '1' in the data)"
    )
    # left out on purpose: a subject of its own name, reported with its sample count
    data = _paired(["1", "2", "3", "4"])
    split = _split(data, train_subjects=["1", "2"], test_subjects=["3"])
    assert left_out(split, data.subjects, data.subject_names) == {"4": 4}
    full = _split(data, train_subjects=["1", "2"], test_subjects=["3", "4"])
    assert left_out(full, data.subjects, data.subject_names) == {}


def _config_on(tmp: Path, split: dict) -> ExperimentConfig:
    config = {
        "name": "left_out",
        "data": {"dataset": "manifest", "root": str(tmp)},
        "modalities": {"imu": {"encoder": "imu", "options": {"widths": [4, 4, 4]}}},
        "splits": [{"kind": "ood", **split}],
        "transfers": [],
        "reference": False,
        "d_out": 8,
        "train": {"max_epochs": 1, "batch_size": 8},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_config(path)


def test_the_runner_refuses_a_slipped_subject_before_writing(tmp_path: Path) -> None:
    from dcat.experiment.runner import run_experiment

    data = _paired(["1", "2", "3", "01"])
    config = _config_on(tmp_path, {"train_subjects": [1, 2], "test_subjects": [3]})
    out = tmp_path / "out"
    with pytest.raises(
        DcatError,
        match=r"^config: splits\[0\]: the ood split \(seed 0\) leaves "
        r"sample 12 \(recording 'r12'\) out of every part: its subject '01'",
    ):
        run_experiment(config, out, data=data)
    assert not out.exists()


def test_a_subject_left_out_on_purpose_is_said(tmp_path: Path, capsys) -> None:
    split = {"train_subjects": ["s1", "s2"], "val_subjects": ["s3"], "test_subjects": ["s4"]}
    rows = _rows(subjects=5)  # s5 in no list
    code, out = _experiment(tmp_path, rows, split, tmp_path / "out")
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert (
        "splits[0] (ood): 4 samples are in no part: subjects s5 (4) are in none of its "
        "subject lists"
    ) in printed
    saved = json.loads((out / "splits" / "ood_seed0.json").read_text())
    assert sorted(saved["train"] + saved["val"] + saved["test"]) == list(range(16))


def test_a_session_column_names_the_split_in_the_report(tmp_path: Path, capsys) -> None:
    rows = [{"session": row.pop("subject"), **row} for row in _rows()]
    manifest = write_manifest(tmp_path / "data", rows)
    config = manifest_config(
        manifest,
        data={"dataset": "manifest", "root": str(manifest), "options": {"group": "session"}},
        modalities={"imu": {"encoder": "imu", "options": {"widths": [4, 4, 4]}}},
        transfers=[], reference=False, splits=[{"kind": "ood", "test_subjects": ["s4"]}],
    )  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["experiment", str(path), "--out", str(tmp_path / "out")]) == 0, (
        capsys.readouterr().err
    )
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Out-of-distribution (OOD): session-disjoint split" in report
    assert "subject-disjoint" not in report
