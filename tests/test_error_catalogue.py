"""The bad-input catalogue (docs/errors.md): one row per case, each run through the command line.

Every case builds a tiny bad input under ``tmp_path`` (a manifest folder, a fake UTD-MHAD,
AVLetters or smartphone/smartwatch folder, a YAML config), runs ``dcat experiment CONFIG --out
OUT`` in-process and checks what a user sees: exit code 2, one ``dcat: error:`` line naming the
file, row, field or shape at fault and what was expected, no traceback, and no file in ``OUT``
that looks like a finished result. A few cases run as a real subprocess, and ``--debug`` shows
the traceback.

The case ids are the ``test id`` column of docs/errors.md; regenerate the table's messages with
``python tests/test_error_catalogue.py`` (prints one Markdown row per case).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import yaml

import test_manifest_media
from dcat.cli import main
from dcat.errors import DcatError
from test_avletters import pattern_vid, utterance_mfcc, write_htk, write_lips

# Files whose presence means "this run (or this model) finished".
FINISHED = ("results.json", "results.csv", "report.md", "metrics.json")

# ---------------------------------------------------------------------------------------------
# Generated inputs


def _rows(subjects: int = 4, classes: tuple[str, ...] = ("a", "b"), reps: int = 2) -> list[dict]:
    """Manifest rows: one per subject × class × repetition, files named by row."""
    rows = []
    for s in range(1, subjects + 1):
        for label in classes:
            for _ in range(reps):
                k = len(rows) + 1
                rows.append(
                    {
                        "subject": f"s{s}",
                        "label": label,
                        "imu": f"imu/t{k}.npy",
                        "imu_hz": "10",
                        "mic": f"mic/t{k}.csv",
                        "mic_hz": "4",
                    }
                )
    return rows


def write_manifest(
    folder: Path,
    rows: list[dict] | None = None,
    edit: Callable[[list[dict], Path], None] | None = None,
) -> Path:
    """A manifest of segmented samples: ``imu`` (20, 3) .npy at 10 Hz and ``mic`` 8-row CSV at
    4 Hz (2 s each). ``edit(rows, folder)`` runs after the files are written and may change
    rows or overwrite files."""
    rows = _rows() if rows is None else rows
    rng = np.random.default_rng(0)
    for row in rows:
        imu, mic = folder / row["imu"], folder / row["mic"]
        imu.parent.mkdir(parents=True, exist_ok=True)
        mic.parent.mkdir(parents=True, exist_ok=True)
        np.save(imu, rng.normal(size=(20, 3)))
        mic.write_text("loudness\n" + "\n".join(f"{v:.3f}" for v in rng.random(8)) + "\n")
    if edit is not None:
        edit(rows, folder)
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(row[c] for c in header) for row in rows]
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def manifest_config(manifest: Path, **changes) -> dict:
    """A tiny experiment on a manifest (one epoch; most cases fail long before training)."""
    config = {
        "name": "catalogue",
        "data": {"dataset": "manifest", "root": str(manifest)},
        "modalities": {
            "imu": {"encoder": "imu", "options": {"widths": [4, 4, 4]}},
            "mic": {"encoder": "sequence", "options": {"d_model": 8, "depth": 1}},
        },
        "splits": [{"kind": "id"}],
        "transfers": [{"source": "mic", "target": "imu"}],
        "methods": ["dcat"],
        "d_out": 8,
        "train": {"max_epochs": 1, "batch_size": 8},
    }
    config.update(changes)
    return config


class _CatalogueTeacher(torch.nn.Module):
    """A user's own teacher for the catalogue's ``mic``: two classes from its input's mean (over
    every channel, or a head over ``channels`` channel means)."""

    def __init__(self, channels: int | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.head = torch.nn.Linear(channels or 1, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = x.mean(dim=2) if self.channels else x.mean(dim=(1, 2))[:, None]
        return {"logits": self.head(pooled)}


def catalogue_teacher() -> torch.nn.Module:
    """The factory a case's config names (``test_error_catalogue:catalogue_teacher``)."""
    return _CatalogueTeacher()


def catalogue_teacher_of_3_channels() -> torch.nn.Module:
    """A factory whose module reads 3 channels, whatever its card says."""
    return _CatalogueTeacher(3)


def with_user_teacher(
    factory: str = "test_error_catalogue:catalogue_teacher",
    weights_of: Callable[[], torch.nn.Module] = catalogue_teacher,
    **card: object,
) -> Callable[[Path], Path]:
    """A case builder: the mic's teacher is the module ``factory`` names, with the weights of
    ``weights_of()`` and a card that describes the data but for ``card``'s fields."""

    def build(tmp: Path) -> Path:
        from safetensors.torch import save_file

        from dcat.io.card import ModelCard

        manifest = write_manifest(tmp / "data")
        fields = {
            "modality": "mic", "class_names": ["a", "b"], "input_shape": [1, 8], "rate_hz": 4.0,
            "channels": ["loudness"], "normalization": None, "architecture": {},
            "dcat_version": "0.1.0", "kind": "series", **card,
        }  # fmt: skip
        ModelCard(**fields).save(tmp / "card.json")  # type: ignore[arg-type]
        save_file(weights_of().state_dict(), str(tmp / "teacher.safetensors"))
        config = manifest_config(manifest)
        config["modalities"]["mic"]["teacher"] = {
            "module": factory, "weights": str(tmp / "teacher.safetensors"),
            "card": str(tmp / "card.json"),
        }  # fmt: skip
        return write_config(tmp, config)

    return build


def write_config(tmp: Path, config: dict) -> Path:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def on_manifest(edit=None, rows=None, **changes) -> Callable[[Path], Path]:
    """A case builder: a manifest folder (optionally edited) and a config reading it."""

    def build(tmp: Path) -> Path:
        manifest = write_manifest(tmp / "data", rows, edit)
        config = manifest_config(manifest, **changes)
        if config["data"].get("root") == "M":  # a changed data section reading this manifest
            config["data"]["root"] = str(manifest)
        return write_config(tmp, config)

    return build


def with_teacher(folder: bool) -> Callable[[Path], Path]:
    """A case builder: the mic's teacher from elsewhere is a path that is not there, or a folder
    that holds no dcat model."""

    def build(tmp: Path) -> Path:
        manifest = write_manifest(tmp / "data")
        teacher = tmp / "teacher"
        if folder:
            teacher.mkdir()
        config = manifest_config(manifest)
        config["modalities"]["mic"]["teacher"] = str(teacher)
        return write_config(tmp, config)

    return build


def empty_manifest(tmp: Path) -> Path:
    manifest = write_manifest(tmp / "data")
    manifest.write_text("")
    return write_config(tmp, manifest_config(manifest))


def with_config(**changes) -> Callable[[Path], Path]:
    """A case builder for config mistakes: a valid manifest, a config with ``changes``."""
    return on_manifest(None, None, **changes)


def _utd(root: Path, trials=((1, 1), (2, 1), (1, 2), (2, 2)), edit=None) -> None:
    rng = np.random.default_rng(0)
    (root / "Inertial").mkdir(parents=True)
    (root / "Skeleton").mkdir(parents=True)
    for action, subject in trials:
        stem = f"a{action}_s{subject}_t1"
        scipy.io.savemat(
            root / "Inertial" / f"{stem}_inertial.mat", {"d_iner": rng.normal(size=(40, 6))}
        )
        scipy.io.savemat(
            root / "Skeleton" / f"{stem}_skeleton.mat", {"d_skel": rng.normal(size=(20, 3, 12))}
        )
    if edit is not None:
        edit(root)


def on_utd_mhad(edit=None, make: bool = True) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        root = tmp / "UTD-MHAD"
        if make:
            _utd(root, edit=edit)
        config = {
            "name": "catalogue",
            "data": {
                "dataset": "utd_mhad",
                "root": str(root),
                "options": {"steps": {"imu": 16, "skeleton": 8}},
            },
            "modalities": {
                "imu": {"encoder": "imu", "options": {"widths": [4, 4, 4]}},
                "skeleton": {"encoder": "sequence", "options": {"d_model": 8, "depth": 1}},
            },
            "splits": [{"kind": "ood", "test_subjects": [2]}],
            "transfers": [{"source": "skeleton", "target": "imu"}],
            "d_out": 8,
            "train": {"max_epochs": 1},
        }
        return write_config(tmp, config)

    return build


def on_avletters(edit) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        root = tmp / "avletters"
        for seed, stem in enumerate(["A1_Amy", "B1_Amy", "A1_Bob", "B1_Bob"]):
            write_lips(root / "Lips" / f"{stem}-lips.mat", pattern_vid(6, seed))
            write_htk(root / "Audio" / "mfcc" / "Clean" / f"{stem}.mfcc", utterance_mfcc(11, seed))
        edit(root)
        config = {
            "name": "catalogue",
            "data": {"dataset": "avletters", "root": str(root), "options": {"frames": 4}},
            "modalities": {
                "lips": {"encoder": "video", "options": {"depth": 18, "d_model": 8}},
                "mfcc": {"encoder": "sequence", "options": {"d_model": 8, "depth": 1}},
            },
            "splits": [{"kind": "ood", "test_subjects": ["Bob"]}],
            "transfers": [{"source": "mfcc", "target": "lips"}],
            "d_out": 8,
        }
        return write_config(tmp, config)

    return build


def on_media(
    edit: Callable[[Path], None], continuous: bool = False, media: dict | None = None
) -> Callable[[Path], Path]:
    """A case builder: a camera + IMU (+ image folder, microphone) manifest of generated media
    (tests/test_manifest_media.py), edited by ``edit(folder)``, and a config reading it."""

    def build(tmp: Path) -> Path:
        if continuous:
            manifest = test_manifest_media.make_continuous_media(tmp)
            options = {"window_s": 1.0, "stride_s": 0.5, "min_class_samples": 1}
        else:
            manifest = test_manifest_media.make_segmented_media(tmp, samples=2)
            options = {"min_class_samples": 1}
        edit(manifest.parent)
        video = {"encoder": "video", "options": {"depth": 18, "d_model": 8}}
        config = {
            "name": "catalogue",
            "data": {
                "dataset": "manifest",
                "root": str(manifest),
                "options": {
                    **options,
                    "frame_cache": str(tmp / "frames"),
                    **({"media": media} if media else {}),
                },
            },
            "modalities": {
                "cam": video,
                "imu": {"encoder": "imu", "options": {"widths": [4, 4, 4]}},
            },
            "splits": [{"kind": "id"}],
            "transfers": [{"source": "cam", "target": "imu"}],
            "d_out": 8,
            "train": {"max_epochs": 1},
        }
        return write_config(tmp, config)

    return build


def _cut_file(path: Path, keep: int = 300) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _fill_first_row(manifest: Path, column: str, value: str) -> None:
    """Set ``column`` (added when missing) of the manifest's first row to ``value``."""
    lines = manifest.read_text().splitlines()
    header = lines[0].split(",")
    if column not in header:
        header.append(column)
        lines = [lines[0] + f",{column}"] + [line + "," for line in lines[1:]]
    index = header.index(column)
    cells = lines[1].split(",")
    cells[index] = value
    lines[1] = ",".join(cells)
    manifest.write_text("\n".join(lines) + "\n")


def _png(path: Path, size: tuple[int, int]) -> None:
    from PIL import Image

    Image.fromarray(np.zeros(size, np.uint8)).save(path)


def on_sp_sw_har(label: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        folder = tmp / "sp_sw_har" / "DATA" / "s01"
        folder.mkdir(parents=True)
        header = "x_acc,y_acc,z_acc,x_gyro,y_gyro,z_gyro,timestamp,label"
        for device in ("sp", "sw"):
            lines = [header] + [
                f"0.1,0.2,9.8,0.0,0.0,0.0,{1_600_000_000_000 + 10 * i},"
                f"{label if i == 3 else 'WALKING'}"
                for i in range(300)
            ]
            (folder / f"s01_01_{device}.csv").write_text("\n".join(lines) + "\n")
        config = {
            "name": "catalogue",
            "data": {"dataset": "sp_sw_har", "root": str(tmp / "sp_sw_har")},
            "modalities": {"phone": {"encoder": "imu"}, "watch": {"encoder": "imu"}},
            "splits": [{"kind": "id"}],
            "transfers": [{"source": "watch", "target": "phone"}],
        }
        return write_config(tmp, config)

    return build


def raw_config(content: str | bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / "config.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return build


# ---------------------------------------------------------------------------------------------
# Edits that break a valid manifest folder


def _save(rel: str, array) -> Callable[[list[dict], Path], None]:
    return lambda rows, folder: np.save(folder / rel, np.asarray(array))


def _write_bytes(rel: str, data: bytes) -> Callable[[list[dict], Path], None]:
    return lambda rows, folder: (folder / rel).write_bytes(data)


def _write_text(rel: str, text: str) -> Callable[[list[dict], Path], None]:
    return lambda rows, folder: (folder / rel).write_text(text)


def _truncate(rel: str, keep: int) -> Callable[[list[dict], Path], None]:
    def edit(rows, folder):
        path = folder / rel
        path.write_bytes(path.read_bytes()[:keep])

    return edit


def _set_cell(row: int, column: str, value: str) -> Callable[[list[dict], Path], None]:
    def edit(rows, folder):
        rows[row - 1][column] = value

    return edit


def _delete(rel: str) -> Callable[[list[dict], Path], None]:
    return lambda rows, folder: (folder / rel).unlink()


def _only_subject_has(label: str, subject: str, reps: int = 2) -> list[dict]:
    """Rows where ``label`` is recorded by ``subject`` only (other subjects have a and b)."""
    rows = _rows()
    for k, row in enumerate(_rows(1, (label,), reps), start=len(rows) + 1):
        rows.append({**row, "subject": subject, "imu": f"imu/t{k}.npy", "mic": f"mic/t{k}.csv"})
    return rows


def _utd_write(rel: str, data: bytes) -> Callable[[Path], None]:
    return lambda root: (root / rel).write_bytes(data)


def _utd_mat(rel: str, variable: str, array) -> Callable[[Path], None]:
    return lambda root: scipy.io.savemat(root / rel, {variable: np.asarray(array)})


def _utd_nan(root: Path) -> None:
    array = np.random.default_rng(1).normal(size=(40, 6))
    array[7, 2] = np.nan
    scipy.io.savemat(root / "Inertial" / "a2_s1_t1_inertial.mat", {"d_iner": array})


# ---------------------------------------------------------------------------------------------
# The catalogue


@dataclass
class Case:
    id: str
    what: str  # the case, in words (docs/errors.md's "case" column)
    where: str  # reader | manifest | config | experiment
    build: Callable[[Path], Path]  # writes the inputs under tmp, returns the config file
    expect: list[str]  # fragments of the message, in order
    args: list[str] = field(default_factory=list)  # extra command-line arguments
    marks: tuple = ()


CASES = [
    # --- config -------------------------------------------------------------------------
    Case("config-missing-file", "config file does not exist", "config",
         lambda tmp: tmp / "nope.yaml", ["nope.yaml", "no such file, and not a preset"]),
    Case("config-invalid-yaml", "config is not valid YAML", "config",
         raw_config("name: x\ndata: [unclosed\n"),
         ["config.yaml: not valid YAML at line 3, column 1: expected ',' or ']'"]),
    Case("config-binary-file", "config is not a text file (a data file given by mistake)",
         "config", raw_config(b"\x93NUMPY\x01\x00"),
         ["config.yaml: not a text (YAML) file"]),
    Case("config-bad-override", "a --set without '='", "config", with_config(),
         ["override 'train.max_epochs' must look like key.path=value"],
         args=["--set", "train.max_epochs"]),
    Case("config-bad-override-value", "a --set value that is not YAML", "config", with_config(),
         ["override 'seeds=[0, 1': the value is not valid YAML at line 1"],
         args=["--set", "seeds=[0, 1"]),
    Case("config-override-mistyped-key", "a --set naming a mistyped key", "config",
         with_config(), ["unknown training option(s) ['max_epoch']", "did you mean 'max_epochs'"],
         args=["--set", "train.max_epoch=2"]),
    Case("config-workers-zero", "--workers below 1", "config", with_config(),
         ["--workers must be at least 1, got 0"], args=["--workers", "0"]),
    Case("config-resources-cpus-zero", "resources.cpus below 1", "config",
         with_config(resources={"cpus": 0}), ["resources.cpus must be positive, got 0"]),
    Case("config-not-a-mapping", "config holds a list, not keys", "config",
         raw_config("- name\n- data\n"), ["config.yaml: must hold a mapping"]),
    Case("config-missing-key", "a required key is missing", "config",
         raw_config("name: x\ndata: {dataset: manifest}\nsplits: [{kind: id}]\n"),
         ["missing required key(s) ['modalities']"]),
    Case("config-mistyped-key", "mistyped top-level key", "config",
         with_config(trian={"max_epochs": 1}),
         ["unknown key(s) ['trian']", "known keys", "did you mean 'train'"]),
    Case("config-mistyped-nested-key", "mistyped key under data", "config",
         with_config(data={"dataset": "manifest", "roots": "x"}),
         ["unknown key(s) ['roots'] under data", "did you mean 'root'"]),
    Case("config-mistyped-train-option", "mistyped training option", "config",
         with_config(train={"epochs": 1}),
         ["train: unknown training option(s) ['epochs']", "did you mean 'max_epochs'"]),
    Case("config-mistyped-reader-option", "mistyped option of the data reader", "config",
         with_config(data={"dataset": "manifest", "root": "M", "options": {"step": {"imu": 8}}}),
         ["config: data.options: unknown option(s) ['step'] for data set 'manifest'",
          "did you mean 'steps'"]),
    Case("config-mistyped-encoder-option", "unknown option of an encoder", "config",
         with_config(modalities={
             "imu": {"encoder": "imu", "options": {"widht": [4, 4, 4]}},
             "mic": {"encoder": "sequence"}}),
         ["config: modalities.imu: encoder 'imu'", "widht"]),
    Case("config-mistyped-modality-train-option", "mistyped training option of one modality",
         "config", with_config(modalities={
             "imu": {"encoder": "imu", "train": {"learning_rate": 0.01}},
             "mic": {"encoder": "sequence"}}),
         ["config.yaml: modalities.imu.train: unknown training option(s) ['learning_rate']"]),
    Case("config-wrong-type", "a value of the wrong type", "config",
         with_config(d_out="big"), ["d_out: must be int, got 'big'"]),
    Case("config-negative-weight", "λ < 0 (weight)", "config",
         with_config(weight=-0.5), ["config.yaml: weight (λ) must be ≥ 0, got -0.5"]),
    Case("config-negative-lambda", "λ < 0 in the λ sweep", "config",
         with_config(lambdas=[0.1, -1.0]), ["config.yaml: lambdas[1] (λ) must be ≥ 0, got -1.0"]),
    Case("config-unknown-encoder", "unknown encoder name", "config",
         with_config(modalities={"imu": {"encoder": "lstm"}, "mic": {"encoder": "sequence"}}),
         ["modalities.imu.encoder: unknown encoder 'lstm'", "registered"]),
    Case("config-unknown-method", "unknown transfer method", "config",
         with_config(methods=["dcat", "mixup"]), ["methods: unknown ['mixup']"]),
    Case("config-unknown-method-option", "a method option that does not exist", "config",
         with_config(methods=[{"name": "contrastive", "temprature": 0.2}]),
         ["methods[0]: unknown option(s) ['temprature'] for method 'contrastive'",
          "did you mean 'temperature'?"]),
    Case("config-bad-method-option", "a method option of the wrong type", "config",
         with_config(methods=[{"name": "logit_kd", "temperature": "hot"}]),
         ["methods[0]: option 'temperature' of method 'logit_kd' must be float, got 'hot'"]),
    Case("config-mistyped-precision", "mistyped precision", "config",
         with_config(train={"max_epochs": 1, "precision": "16mixed"}),
         ["train: TrainConfig.precision must be one of", "did you mean '16-mixed'?"]),
    Case("config-mistyped-accelerator", "mistyped accelerator", "config",
         with_config(train={"max_epochs": 1, "accelerator": "gpus"}),
         ["train: TrainConfig.accelerator must be one of", "did you mean 'gpu'?"]),
    Case("config-mistyped-strategy", "mistyped strategy", "config",
         with_config(train={"max_epochs": 1, "strategy": "dpp"}),
         ["train: TrainConfig.strategy must be one of", "did you mean 'ddp'?"]),
    Case("config-encoder-does-not-fit-data", "an encoder for another input shape (video on a "
         "series)", "experiment",
         with_config(modalities={"imu": {"encoder": "video"}, "mic": {"encoder": "sequence"}}),
         ["dry run of the imu model on one batch of training data (imu (2, 3, 20), mic (2, 1, 8))",
          "VideoEncoder expects input of shape (B, F, 3, H, W), got (2, 3, 20)"]),
    Case("config-transfer-undeclared-modality", "a transfer names an undeclared modality",
         "config", with_config(transfers=[{"source": "audio", "target": "imu"}]),
         ["transfers[0].source: modality 'audio' is not declared under modalities"]),
    Case("config-virtual-placement-not-training-data", "a virtual IMU placed per class (it "
         "reads the labels) used as a network's input", "config",
         with_config(modalities={"imu": {"encoder": "imu"}, "mic": {"encoder": "sequence"},
                                 "v": {"encoder": "imu", "derive": {"modality": "mic",
                                       "virtual_imu": {"like": "imu", "placement": "utd_mhad"}}}},
                     transfers=[{"source": "v", "target": "imu"}]),
         ["modalities.v.derive.virtual_imu: a per-class placement reads the labels",
          "may only be the source of method 'virtual'"]),
    Case("config-virtual-from-a-non-skeleton", "a virtual IMU derived from a modality that is "
         "not a skeleton of the named joints", "experiment",
         with_config(modalities={"imu": {"encoder": "imu"}, "mic": {"encoder": "sequence"},
                                 "v": {"derive": {"modality": "mic", "virtual_imu": {
                                     "like": "imu", "segment": "right_wrist"}}}},
                     transfers=[{"target": "imu", "sources": [
                         {"modality": "v", "method": "virtual"}]}]),
         ["config: modalities.v.derive: virtual modality 'v': 'mic' has 1 channels, but 20 "
          "joints of x, y, z need 60"]),
    Case("config-unknown-split-kind", "unknown split kind", "config",
         with_config(splits=[{"kind": "loso"}]), ["splits[0].kind: must be one of ['id', 'ood']"]),
    Case("config-unknown-dataset", "unknown data set name", "config",
         with_config(data={"dataset": "utd", "root": "x"}),
         ["config: data.dataset: unknown data set 'utd'"]),
    Case("config-missing-root", "data.root not given", "config",
         with_config(data={"dataset": "manifest"}), ["config: data.root is required"]),
    Case("config-root-not-found", "data.root does not exist", "config",
         with_config(data={"dataset": "manifest", "root": "/no/such/folder/manifest.csv"}),
         ["config: data.root: /no/such/folder/manifest.csv not found"]),
    Case("config-modality-not-in-data", "a declared modality is not in the data", "experiment",
         with_config(modalities={"imu": {"encoder": "imu"}, "audio": {"encoder": "audio"}},
                     transfers=[]),
         ["config: modalities ['audio'] are not in the data set 'manifest'",
          "which has ['imu', 'mic']"]),
    Case("config-normalization-unknown-modality", "normalization names an unknown modality",
         "config", with_config(data={"dataset": "manifest", "root": "M",
                                     "normalization": {"imu": "zscore", "acc": "minmax"}}),
         ["config: data.normalization: modality 'acc' is not", "['imu', 'mic']"]),
    Case("config-normalization-unknown-kind", "unknown normalization kind", "config",
         with_config(data={"dataset": "manifest", "root": "M", "normalization": "zscroe"}),
         ["config: data.normalization.imu: must be zscore, minmax, isotropic or none, "
          "got 'zscroe'"]),
    # --- manifest and its files -------------------------------------------------------------
    Case("manifest-missing-data-file", "a file named in the manifest is missing", "manifest",
         on_manifest(_delete("imu/t3.npy")),
         ["manifest.csv, row 3, column 'imu': file not found:", "imu/t3.npy"]),
    Case("manifest-empty-manifest", "the manifest file is empty", "manifest",
         empty_manifest, ["manifest.csv: empty manifest (expected a header line naming the "
                          "columns)"]),
    Case("manifest-empty-npy", "a .npy file of 0 bytes", "manifest",
         on_manifest(_write_bytes("imu/t2.npy", b"")),
         ["row 2, column 'imu'", "imu/t2.npy: cannot read as a .npy file"]),
    Case("manifest-empty-csv", "an empty CSV file", "manifest",
         on_manifest(_write_text("mic/t4.csv", "")),
         ["row 4, column 'mic'", "mic/t4.csv: empty file"]),
    Case("manifest-csv-header-only", "a CSV file with a header and no rows", "manifest",
         on_manifest(_write_text("mic/t4.csv", "loudness\n")),
         ["row 4, column 'mic'", "mic/t4.csv: empty file (no data rows after the header)"]),
    Case("manifest-truncated-npy", "a truncated .npy file", "manifest",
         on_manifest(_truncate("imu/t5.npy", 200)),
         ["row 5, column 'imu'", "imu/t5.npy: cannot read as a .npy file"]),
    Case("manifest-corrupt-npy", "a .npy file that is not NumPy's format", "manifest",
         on_manifest(_write_bytes("imu/t5.npy", b"PK\x03\x04 not numpy")),
         ["row 5, column 'imu'", "imu/t5.npy: cannot read as a .npy file"]),
    Case("manifest-non-numeric-csv-cell", "a CSV cell that is not a number", "manifest",
         on_manifest(_write_text("mic/t2.csv", "loudness\n0.1\n0.2\nn/a\n0.4\n")),
         ["row 2, column 'mic'", "mic/t2.csv: row 3, column 'loudness': 'n/a' is not a number"]),
    Case("manifest-ragged-csv", "a CSV row with a missing field", "manifest",
         on_manifest(_write_text("mic/t2.csv", "time,loudness\n0,0.1\n0.25\n")),
         ["mic/t2.csv: row 2 has 1 fields but the header has 2"]),
    Case("manifest-nan-npy", "NaN in a sensor stream (.npy)", "manifest",
         on_manifest(_save("imu/t6.npy", np.where(np.eye(20, 3) > 0, np.nan, 0.0))),
         ["row 6, column 'imu'", "imu/t6.npy has a NaN or Inf value (first at index (0, 0) "
          "of shape (20, 3))"]),
    Case("manifest-inf-csv", "Inf in a sensor stream (CSV)", "manifest",
         on_manifest(_write_text("mic/t7.csv", "loudness\n" + "0.5\n" * 5 + "inf\n0.1\n0.2\n")),
         ["row 7, column 'mic'", "mic/t7.csv has a NaN or Inf value (first at index (5, 0)"]),
    Case("manifest-wrong-dtype-npy", "a .npy of strings", "manifest",
         on_manifest(_save("imu/t1.npy", np.array(["a", "b"]))),
         ["row 1, column 'imu'", "wrong dtype <U1 (expected integer or float numbers)"]),
    Case("manifest-wrong-shape-npy", "a .npy with 3 dimensions", "manifest",
         on_manifest(_save("imu/t1.npy", np.zeros((20, 3, 2)))),
         ["row 1, column 'imu'", "expected shape (T, C) or (T,), got (20, 3, 2)"]),
    Case("manifest-wrong-channel-count", "wrong channel count in one sample", "manifest",
         on_manifest(_save("imu/t9.npy", np.zeros((20, 4)))),
         ["row 9, column 'imu'", "modality 'imu' has 3 channel(s) in row 1 but 4 in row 9"]),
    Case("manifest-modality-missing-in-row", "a modality present in one sample, missing in another",
         "manifest", on_manifest(_set_cell(5, "mic", "")),
         ["row 5, column 'mic'", "modality 'mic' is empty in row(s) [5] but filled in row(s)"]),
    Case("manifest-durations-disagree", "paired recordings' durations disagree", "manifest",
         on_manifest(_set_cell(3, "mic_hz", "8")),
         ["row 3: modalities cover different durations (imu 2 s, mic 1 s), more than 10% apart"]),
    Case("manifest-bad-rate", "a sampling rate that is not a number", "manifest",
         on_manifest(_set_cell(3, "mic_hz", "4kHz")),
         ["row 3, column 'mic_hz': '4kHz' is not a sampling rate in Hz"]),
    Case("manifest-no-label", "every label cell empty (unlabelled samples only)", "manifest",
         on_manifest(lambda rows, folder: [r.update(label="") for r in rows]),
         ["every label is empty: no class to learn (label some samples, or list the classes "
          "in data.options.classes)"]),
    Case("manifest-label-not-in-classes", "a label not in the class list", "manifest",
         on_manifest(_set_cell(4, "label", "c"),
                     data={"dataset": "manifest", "root": "M", "options": {"classes": ["a", "b"]}}),
         ["row 4, column 'label': label 'c' is not one of the classes ['a', 'b']"]),
    Case("manifest-one-off-label", "a label found once (a typo such as DD among A…D)", "manifest",
         on_manifest(_set_cell(4, "label", "bb")),
         ["row 4, column 'label': label 'bb' occurs in 1 sample(s), fewer than "
          "min_class_samples=2 (a typo?); list the real classes in data.options.classes"]),
    Case("manifest-mistyped-label-column", "the label column's name mistyped", "manifest",
         on_manifest(lambda rows, folder: [r.update(lable=r.pop("label")) for r in rows]),
         ["found neither; did you mean 'label' for 'lable'?"]),
    Case("manifest-unknown-column", "an extra column (typo or notes)", "manifest",
         on_manifest(lambda rows, folder: [r.update(notes="x") for r in rows]),
         ["unknown column(s) ['notes']"]),
    Case("manifest-path-outside-folder", "a path that leaves the manifest's folder", "manifest",
         on_manifest(_set_cell(1, "imu", "../imu/t1.npy")),
         ["row 1, column 'imu'", "path '../imu/t1.npy' leads outside the manifest's folder"]),
    # --- the real data sets' readers --------------------------------------------------------
    Case("utd-missing-root", "UTD-MHAD folder does not exist", "reader",
         on_utd_mhad(make=False), ["config: data.root:", "UTD-MHAD not found"]),
    Case("utd-corrupt-mat", "a corrupt .mat file", "reader",
         on_utd_mhad(_utd_write("Inertial/a2_s1_t1_inertial.mat", b"MATLAB 5.0 garbage")),
         ["a2_s1_t1_inertial.mat: cannot read as a .mat file"]),
    Case("utd-truncated-mat", "a truncated .mat file", "reader",
         on_utd_mhad(lambda root: (root / "Skeleton" / "a1_s2_t1_skeleton.mat").write_bytes(
             (root / "Skeleton" / "a1_s2_t1_skeleton.mat").read_bytes()[:300])),
         ["a1_s2_t1_skeleton.mat: cannot read as a .mat file"]),
    Case("utd-wrong-channel-count", "an inertial file with 4 channels, not 6", "reader",
         on_utd_mhad(_utd_mat("Inertial/a1_s2_t1_inertial.mat", "d_iner", np.ones((40, 4)))),
         ["a1_s2_t1_inertial.mat: d_iner must have shape (N ≥ 2, 6), got (40, 4)"]),
    Case("utd-missing-variable", "a .mat file without the expected variable", "reader",
         on_utd_mhad(_utd_mat("Skeleton/a2_s2_t1_skeleton.mat", "skel", np.ones((20, 3, 9)))),
         ["a2_s2_t1_skeleton.mat: variable 'd_skel' not found (has ['skel'])"]),
    Case("utd-nan", "NaN in an inertial recording", "reader", on_utd_mhad(_utd_nan),
         ["a2_s1_t1_inertial.mat: d_iner has NaN or Inf values (first at index (7, 2) of shape "
          "(40, 6))"]),
    Case("utd-missing-pair", "a trial whose skeleton file is missing", "reader",
         on_utd_mhad(lambda root: (root / "Skeleton" / "a2_s2_t1_skeleton.mat").unlink()),
         ["a2_s2_t1_skeleton.mat: missing skeleton file for trial a2_s2_t1"]),
    Case("avletters-truncated-htk", "a truncated HTK (.mfcc) file", "reader",
         on_avletters(lambda root: write_htk(root / "Audio/mfcc/Clean/B1_Amy.mfcc",
                                             utterance_mfcc(11, 0), n_samples=13)),
         ["B1_Amy.mfcc: HTK body has 1144 bytes, expected 1352", "truncated"]),
    Case("avletters-wrong-coefficients", "an HTK file with 13 values per frame, not 26",
         "reader", on_avletters(lambda root: write_htk(
             root / "Audio/mfcc/Clean/A1_Bob.mfcc", utterance_mfcc(11, 0)[:, :13])),
         ["A1_Bob.mfcc: 13 values per frame, expected 26"]),
    Case("avletters-durations-disagree", "lip video and audio durations disagree", "reader",
         on_avletters(lambda root: write_htk(root / "Audio/mfcc/Clean/A1_Bob.mfcc",
                                             utterance_mfcc(30, 0))),
         ["utterance A1_Bob: video lasts 0.24 s (6 frames at 25 fps) but MFCC 0.60 s",
          "(limit 35%)"]),
    Case("avletters-missing-pair", "an utterance without its lips file", "reader",
         on_avletters(lambda root: (root / "Lips" / "B1_Bob-lips.mat").unlink()),
         ["B1_Bob-lips.mat: missing lips file for utterance B1_Bob"]),
    Case("sp_sw_har-unknown-label", "a label not in the data set's class list", "reader",
         on_sp_sw_har("RUNNING"),
         ["s01_01_sp.csv: row 4, column 'label': unknown label 'RUNNING'", "WALKING"]),
    # --- media in the manifest: video, image frames, audio ----------------------------------
    Case("media-truncated-video", "a truncated (or unreadable) video file", "manifest",
         on_media(lambda folder: _cut_file(folder / "cam" / "1.mp4")),
         ["manifest.csv, row 2, column 'cam': ", "cam/1.mp4: cannot read media (corrupt or "
          "unsupported file)"]),
    Case("media-video-shorter-than-window", "a video shorter than one window", "manifest",
         on_media(lambda folder: test_manifest_media.write_video(folder / "cam.mp4", 5),
                  continuous=True),
         ["manifest.csv, row 1, column 'cam': ", "cam.mp4 lasts 0.5 s, shorter than one window "
          "of 1 s"]),
    Case("media-missing-image-frame", "a folder of image frames with a frame missing",
         "manifest", on_media(lambda folder: (folder / "pics" / "1" / "frame_0007.png").unlink()),
         ["manifest.csv, row 2, column 'pics': ", "pics/1: missing image frame 7 (the frames "
          "are numbered 1–20 but 19 files are there)"]),
    Case("media-audio-channels", "an audio file with another channel count than the others",
         "manifest", on_media(lambda folder: test_manifest_media.sf.write(
             folder / "mic" / "1.wav", test_manifest_media.tone(2.0, channels=2),
             test_manifest_media.RATE)),
         ["manifest.csv, row 2, column 'mic': ", "mic/1.wav has 2 audio channel(s), the modality "
          "'mic' has 1 in row 1", "mono: true"]),
    Case("media-mixed-frame-sizes", "videos of one sensor with different frame sizes",
         "manifest", on_media(lambda folder: test_manifest_media.write_video(
             folder / "cam" / "1.mp4", 20, size=(48, 64))),
         ["manifest.csv, row 2, column 'cam': modality 'cam' has frames of 24×32 pixels in row 1 "
          "but 48×64 in ", "(mixed frame sizes within one sensor"]),
    Case("media-mixed-image-sizes", "an image frame of another size within one folder",
         "manifest", on_media(lambda folder: _png(folder / "pics" / "0" / "frame_0003.png",
                                                  (10, 10)),
                              media={"pics": {"frames": 20}}),
         ["manifest.csv, row 1, column 'pics': ", "frame_0003.png: frame of 10×10 pixels, the "
          "sequence's first frame is 24×32 (mixed frame sizes within one sensor)"]),
    Case("media-rate-contradicts-container", "a rate column that contradicts the video's own",
         "manifest",
         on_media(lambda folder: _fill_first_row(folder / "manifest.csv", "cam_hz", "30")),
         ["manifest.csv, row 1, column 'cam_hz': 30 Hz contradicts ", "cam/0.mp4, which the "
          "container says is 10 fps; leave the cell empty to use the file's own rate"]),
    # --- issue 25, nothing silent: duplicated rows, subject spellings, the group column, ------
    # --- unreadable or transposed arrays ----------------------------------------------------
    Case("manifest-duplicate-row", "a row listed twice (the same files): it would train twice "
         "and can land in training and test", "manifest",
         on_manifest(lambda rows, folder: rows[6].update(imu=rows[2]["imu"], mic=rows[2]["mic"])),
         ["manifest.csv, row 7: duplicates row 3: the same files (imu 'imu/t3.npy', mic "
          "'mic/t3.csv')", "remove one, or set data.options.duplicates: keep"]),
    Case("manifest-subject-spelled-two-ways", "one subject written two ways (s01 among s1)",
         "manifest", on_manifest(_set_cell(3, "subject", "s01")),
         ["manifest.csv, row 3, column 'subject': subject 's01' (row(s) [3]) and 's1' (row(s) "
          "[1, 2, 4]) differ only in case, spaces or leading zeros; did you mean 's1'?"]),
    Case("manifest-group-column-missing", "data.options.group names a column the manifest lacks",
         "manifest", with_config(data={"dataset": "manifest", "root": "M",
                                       "options": {"group": "session"}}),
         ["manifest.csv, column 'session': missing required column (data.options.group names "
          "it)"]),
    Case("manifest-series-saved-transposed", "a series .npy saved as (C, T)", "manifest",
         on_manifest(_save("imu/t3.npy", np.zeros((3, 20)))),
         ["row 3: modalities cover different durations (imu 0.3 s, mic 2 s)", "imu: ",
          "imu/t3.npy has shape (3, 20), and its axis 1 (20 steps, 2 s at 10 Hz) looks like "
          "time: it seems saved as (C, T); save it as (T, C) (array.T)"]),
    Case("media-truncated-frame-array", "a truncated .npy of depth frames", "manifest",
         on_media(lambda folder: _cut_file(folder / "depth" / "1.npy")),
         ["manifest.csv, row 2, column 'depth': ", "depth/1.npy: cannot read as a .npy file "
          "(truncated? its header promises uint16 (20, 24, 32), 30720 bytes of data, the file "
          "holds 172)"]),
    Case("media-corrupt-frame-array", "a depth-frame file that is not NumPy's format",
         "manifest", on_media(lambda folder: (folder / "depth" / "1.npy").write_bytes(b"PK\x03")),
         ["manifest.csv, row 2, column 'depth': ", "depth/1.npy: cannot read as a .npy file (no "
          "NPY header"]),
    Case("media-2d-frame-array", "one frame (H, W) where a clip of frames is expected",
         "manifest", on_media(lambda folder: np.save(folder / "depth" / "1.npy",
                                                     np.zeros((24, 32), np.uint16))),
         ["manifest.csv, row 2, column 'depth': ", "depth/1.npy: frame arrays are (T, H, W[, C]), "
          "got (H, W) = (24, 32)"]),
    Case("media-5d-frame-array", "a 5-D array of frames", "manifest",
         on_media(lambda folder: np.save(folder / "depth" / "1.npy",
                                         np.zeros((1, 20, 24, 32, 1), np.uint16))),
         ["manifest.csv, row 2, column 'depth': ", "depth/1.npy: frame arrays are (T, H, W[, C]) "
          "and series (T, C) or (T,), got 5-D (1, 20, 24, 32, 1)", "np.squeeze it"]),
    Case("media-clip-saved-h-w-t", "a clip of frames saved as (H, W, T)", "manifest",
         on_media(lambda folder: np.save(folder / "depth" / "1.npy", np.moveaxis(
             test_manifest_media.depth_frames(20), 0, -1))),
         ["manifest.csv, row 2: modalities cover different durations", "depth: ",
          "depth/1.npy has shape (24, 32, 20), and its axis 2 (20 steps, 2 s at 10 Hz) looks "
          "like time: it seems saved as (H, W, T); save it as (T, H, W)"]),
    # --- issue 26, skeleton teachers: layouts, body centring, skeleton encoders, the recipe ---
    Case("skeleton-unknown-layout", "data.skeletons names a layout dcat does not ship",
         "config", with_config(data={"dataset": "manifest", "root": "M",
                                     "skeletons": {"imu": "kinect_v3"}}),
         ["data.skeletons.imu: unknown skeleton layout 'kinect_v3'; shipped layouts: "
          "['azure_kinect', 'kinect_v1', 'kinect_v2', 'mediapipe_pose']",
          "did you mean 'kinect_v2'?"]),
    Case("skeleton-layout-not-a-tree", "a user's skeleton layout whose parents form a cycle",
         "config", with_config(data={"dataset": "manifest", "root": "M", "skeletons": {"imu": {
             "joints": ["hip", "knee", "ankle"], "parents": [None, "ankle", "knee"],
             "root": "hip", "scale": ["hip", "knee"]}}}),
         ["data.skeletons.imu: skeleton layout 'imu': joint 'knee' never reaches the root "
          "(a cycle)"]),
    Case("skeleton-layout-wrong-channels", "a skeleton layout whose joints × 3 is not the "
         "modality's channel count", "experiment",
         with_config(data={"dataset": "manifest", "root": "M", "skeletons": {"imu": "kinect_v1"}}),
         ["config: data.skeletons.imu: layout 'kinect_v1' has 20 joints × 3 = 60 channels, the "
          "modality's samples are (3, 20) (channels, steps)"]),
    Case("skeleton-body-centring-without-layout", "centering: body for a modality without a "
         "skeleton layout", "config",
         with_config(data={"dataset": "manifest", "root": "M", "centering": {"imu": "body"}}),
         ["data.centering.imu: 'body' needs the modality's skeleton layout under "
          "data.skeletons"]),
    Case("skeleton-encoder-bones-without-layout", "a skeleton encoder's bones stream with no "
         "layout to take the joints' parents from", "experiment",
         with_config(modalities={"imu": {"encoder": "skeleton_tcn", "options": {"width": 8}},
                                 "mic": {"encoder": "sequence"}}),
         ["config: modalities.imu: ", "the bones stream needs the joints' parents: declare the "
          "modality's skeleton layout under data.skeletons, or give the encoder option parents"]),
    Case("recipe-warmup-without-cosine", "warm-up epochs without the cosine schedule", "config",
         with_config(train={"max_epochs": 3, "warmup_epochs": 1}),
         ["train: TrainConfig.warmup_epochs needs schedule 'cosine'"]),
    # --- the experiment ---------------------------------------------------------------------
    Case("split-class-without-training-sample", "a class with no training sample after the split",
         "experiment", on_manifest(rows=_only_subject_has("c", "s4"),
                                   splits=[{"kind": "ood", "test_subjects": ["s4"]}]),
         ["config: splits[0]: the ood split (seed 0) leaves classes without a training "
          "sample: ['c']"]),
    Case("split-empty-part", "a subject list that leaves a split empty", "experiment",
         with_config(splits=[{"kind": "ood", "train_subjects": ["s1", "s2"],
                              "val_subjects": ["s3", "s4"]}]),
         ["config: splits[0]: the ood split (seed 0) leaves the test part empty (subjects: "
          "train [s1, s2]; val [s3, s4]; test none)"]),
    Case("split-too-few-samples", "too few samples per class for a stratified split",
         "experiment", with_config(splits=[{"kind": "id", "val_size": 0.05}]),
         ["config: splits[0]: cannot draw a stratified id split of 16 samples of 2 classes with "
          "test_size=0.2, val_size=0.05"]),
    Case("split-unknown-subject", "a subject list naming a subject not in the data", "experiment",
         with_config(splits=[{"kind": "ood", "test_subjects": ["s1", "s9"]}]),
         ["config: splits[0].test_subjects: subject 's9' is not in the data set; its subjects "
          "are: s1, s2, s3, s4"]),
    Case("split-subject-by-index", "a subject list giving 0-based indices, not the names in "
         "the data", "experiment", with_config(splits=[{"kind": "ood", "test_subjects": [0]}]),
         ["config: splits[0].test_subjects: subject 0 is not in the data set; its subjects are: "
          "s1, s2, s3, s4"]),
    Case("split-later-split-bad", "the second split is bad: found before any training",
         "experiment", on_manifest(rows=_only_subject_has("c", "s4", reps=4),
                                   splits=[{"kind": "id", "val_size": 0.3},
                                           {"kind": "ood", "test_subjects": ["s4"]}]),
         ["config: splits[1]: the ood split (seed 0) leaves classes without a training "
          "sample: ['c']"]),
    # --- issue 28, label-efficiency points -----------------------------------------------
    Case("split-curve-two-forms", "a split given both a share curve and a subject curve",
         "config", with_config(splits=[{"kind": "ood", "label_fractions": [0.5],
                                        "labelled_subjects": [["s1"]]}]),
         ["give one of label_fractions, labelled_subjects and labelled"]),
    Case("split-curve-subjects-on-id", "labelled subjects on an ID split", "config",
         with_config(splits=[{"kind": "id", "labelled_subjects": [["s1"]]}]),
         ["labelled subjects apply to OOD splits (kind: ood)"]),
    Case("split-point-without-labels", "a point with no labelled training sample", "config",
         with_config(splits=[{"kind": "id", "label_fractions": [0.0, 0.5]}]),
         ["splits: id_share0: a point without labelled training samples has no teacher for "
          "['mic']: a source trained here learns from the point's labels (give "
          "modalities.mic.teacher, a model trained elsewhere)"]),
    Case("split-same-name", "two splits of one kind, neither named", "config",
         with_config(splits=[{"kind": "id"}, {"kind": "id", "test_size": 0.3}]),
         ["config.yaml: splits: two splits are named 'id'; give each its own name"]),
    Case("teacher-missing", "a teacher trained elsewhere whose path is not there", "experiment",
         with_teacher(folder=False),
         ["config: modalities.mic.teacher: teacher ", "/teacher: no such file or folder"]),
    Case("teacher-not-a-model", "a teacher folder that holds no dcat model", "experiment",
         with_teacher(folder=True),
         ["config: modalities.mic.teacher: teacher ", "/teacher: not a dcat run folder (no "
          "checkpoints/best.ckpt), checkpoint or export folder (no metadata.json)"]),
    Case("teacher-card-rate", "a teacher trained elsewhere at another rate than the data's",
         "experiment", with_user_teacher(rate_hz=8.0),
         ["config: modalities.mic.teacher (test_error_catalogue:catalogue_teacher (",
          "teacher.safetensors)): rate_hz: the teacher was trained at 8 Hz, the data are at "
          "4 Hz"]),
    Case("teacher-card-channels", "a teacher trained elsewhere on other channels", "experiment",
         with_user_teacher(input_shape=[2, 8], channels=["loudness", "pitch"]),
         ["channels: the teacher reads samples of shape [2, 8], the "
          "data's are [1, 8]"]),
    Case("teacher-no-shared-class", "a teacher trained elsewhere that shares no class with the "
         "data", "experiment", with_user_teacher(class_names=["x", "y"]),
         ["config: modalities.mic.teacher (", "): the teacher shares no class with the data "
          "(its classes: ['x', 'y'])"]),
    Case("teacher-factory-not-importable", "a user's teacher module that cannot be imported",
         "experiment", with_user_teacher(factory="nowhere:build"),
         ["config: modalities.mic.teacher: teacher factory 'nowhere:build': cannot import it "
          "(No module named 'nowhere')"]),
    Case("teacher-weights-do-not-fit", "a user's teacher whose weights do not fit its module",
         "experiment", with_user_teacher("test_error_catalogue:catalogue_teacher_of_3_channels"),
         ["config: modalities.mic.teacher: teacher ", "teacher.safetensors: the weights do not "
          "fit test_error_catalogue:catalogue_teacher_of_3_channels (size mismatch for "
          "head.weight: copying a param with shape torch.Size([2, 1]) from checkpoint, the "
          "shape in current model is torch.Size([2, 3]).)"]),
    Case("teacher-module-fails", "a user's teacher module that fails on its own card's input "
         "shape", "experiment",
         with_user_teacher("test_error_catalogue:catalogue_teacher_of_3_channels",
                           catalogue_teacher_of_3_channels),
         ["config: modalities.mic.teacher: teacher factory "
          "'test_error_catalogue:catalogue_teacher_of_3_channels': its module fails on one "
          "sample of its card's input shape [1, 8] (mat1 and mat2 shapes cannot be "
          "multiplied (1x1 and 3x2))"]),
    Case("teacher-module-returns-a-tensor", "a user's teacher module that returns a tensor, "
         "not logits", "experiment", with_user_teacher("torch.nn:Identity", torch.nn.Identity),
         ["config: modalities.mic.teacher: teacher factory 'torch.nn:Identity': a user's "
          "teacher must return a ModalityOutput or a mapping with 'logits' (and optionally "
          "'keys', 'values', 'embedding'), got Tensor"]),
    Case("split-labelled-subject-not-training", "a labelled subject that is not a training "
         "subject", "experiment",
         with_config(splits=[{"kind": "ood", "train_subjects": ["s1", "s2"],
                              "val_subjects": ["s3"], "test_subjects": ["s4"],
                              "labelled_subjects": [["s1"], ["s4"]]}]),
         ["config: splits: ood_labelleds4: labelled subjects ['s4'] have no training sample "
          "in seed 0's split (the labelled subjects must be training subjects)"]),
    # --- issue 25, media on a CPU: the small video encoder ----------------------------------
    Case("video-small-even-temporal-kernel", "the small video encoder given an even temporal "
         "kernel (no frame at its centre)", "experiment",
         with_config(modalities={"imu": {"encoder": "video_small",
                                         "options": {"temporal_kernel": 2}},
                                 "mic": {"encoder": "sequence"}}),
         ["config: modalities.imu: temporal_kernel must be odd and positive, got 2"]),
]  # fmt: skip


def _finished(out: Path) -> dict[str, bytes]:
    """Files under ``out`` that look like a finished run or model, with their content."""
    if not out.exists():
        return {}
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.name in FINISHED and p.is_file()
    }


def _run(case: Case, tmp_path: Path, capsys) -> tuple[int, str, Path]:
    config = case.build(tmp_path)
    out = tmp_path / "out"
    code = main(["experiment", str(config), "--out", str(out), *case.args])
    captured = capsys.readouterr()
    return code, captured.err, out


def _check(code: int, err: str, expect: list[str]) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dcat: error: "), err
    position = 0
    for fragment in expect:
        found = lines[0].find(fragment, position)
        assert found >= 0, f"{fragment!r} not in (after position {position}):\n{lines[0]}"
        position = found + len(fragment)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, capsys) -> None:
    code, err, out = _run(case, tmp_path, capsys)
    _check(code, err, case.expect)
    assert _finished(out) == {}, f"a failed run left {sorted(_finished(out))}"
    assert not out.exists()  # every case is found before anything is written


# ---------------------------------------------------------------------------------------------
# A source checkpoint trained on other classes or another d_out


def _imu_only(manifest: Path) -> dict:
    return manifest_config(
        manifest, modalities={"imu": {"encoder": "imu", "options": {"widths": [4, 4, 4]}}},
        transfers=[], splits=[{"kind": "id", "val_size": 0.3}],
    )  # fmt: skip


def train_finished_run(tmp: Path) -> Path:
    """A finished one-epoch run (imu baseline, d_out 8, classes a and b); returns its folder."""
    config = write_config(tmp, _imu_only(write_manifest(tmp / "data")))
    out = tmp / "out"
    assert main(["experiment", str(config), "--out", str(out)]) == 0
    assert (out / "results.json").is_file()
    _FINISHED_RUN[:] = [out]
    return out


_FINISHED_RUN: list[Path] = []  # set by train_finished_run, copied by on_finished_run


def on_finished_run(other_classes: bool) -> Callable[[Path], Path]:
    """A copy of the finished run as OUT, and a config on data with a third class or not."""

    def build(tmp: Path) -> Path:
        shutil.copytree(_FINISHED_RUN[0], tmp / "out")
        rows = _only_subject_has("c", "s1", reps=4) if other_classes else None
        return write_config(tmp, _imu_only(write_manifest(tmp / "data", rows)))

    return build


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return train_finished_run(tmp_path_factory.mktemp("finished"))


CHECKPOINT_CASES = [
    Case("checkpoint-other-d-out", "an earlier baseline trained with another d_out",
         "experiment", on_finished_run(False),
         ["1 model(s) there were trained with other settings: runs/id/seed0/imu/baseline: "
          "network.d_out 8 → 16", "fresh --out folder", "--retrain-changed"],
         args=["--set", "d_out=16"]),
    Case("checkpoint-other-classes", "an earlier baseline trained on other classes",
         "experiment", on_finished_run(True),
         ["runs/id/seed0/imu/baseline: data.classes ['a', 'b'] → ['a', 'b', 'c']"]),
]  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CHECKPOINT_CASES])
def test_stale_checkpoint(case: Case, finished_run, tmp_path: Path, capsys) -> None:
    """Re-running into a finished folder after changing d_out or the classes: the baseline's
    checkpoint no longer fits; the old results stay as they were, no new one is written."""
    config, out = case.build(tmp_path), tmp_path / "out"
    before = _finished(out)
    assert "results.json" in before
    described = (out / "config.yaml").read_bytes()
    code = main(["experiment", str(config), "--out", str(out), *case.args])
    _check(code, capsys.readouterr().err, case.expect)
    assert _finished(out) == before
    assert (out / "config.yaml").read_bytes() == described  # still describes the results


def test_results_name_the_manifest_data_set(finished_run) -> None:
    records = json.loads((finished_run / "results.json").read_text())
    assert {r["dataset"] for r in records} == {"data"}  # the manifest's folder, not "manifest"


def test_retrain_changed_from_the_command_line(finished_run, tmp_path: Path, capsys) -> None:
    config, out = on_finished_run(False)(tmp_path), tmp_path / "out"
    args = ["experiment", str(config), "--out", str(out), "--set", "d_out=16"]
    assert main([*args, "--retrain-changed"]) == 0
    printed = capsys.readouterr().out
    assert "retraining runs/id/seed0/imu/baseline: network.d_out 8 → 16" in printed
    recorded = json.loads((out / "runs/id/seed0/imu/baseline/fingerprint.json").read_text())
    assert recorded["network"]["d_out"] == 16
    assert main(args) == 0  # consistent again: the same command now reuses the model
    assert "(done before)" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# A run that fails part-way: finished models stay (a re-run resumes), nothing looks finished


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (DcatError("simulated failure"), 2, "dcat: error: simulated failure"),
        (KeyboardInterrupt(), 130, "dcat: interrupted by SIGINT; rerun the same command to resume"),
    ],
    ids=["error", "interrupt"],
)
def test_failure_part_way_leaves_no_results(
    error: BaseException, code: int, message: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    import dcat.experiment.grid

    real_fit = dcat.experiment.grid.fit

    def fit(task, train, val, options, run_dir, **kwargs):
        if "dcat_from-mic" in str(run_dir):  # the transfer, after both baselines
            raise error
        return real_fit(task, train, val, options, run_dir, **kwargs)

    monkeypatch.setattr(dcat.experiment.grid, "fit", fit)
    config, out = with_config()(tmp_path), tmp_path / "out"
    assert main(["experiment", str(config), "--out", str(out)]) == code
    # (Lightning's own INFO lines go to stderr too; so may its logging complaints about the
    # streams of earlier tests that pytest closed, hence "in" and no traceback check here)
    assert message in capsys.readouterr().err.splitlines()
    assert sorted(_finished(out)) == [
        "runs/id/seed0/imu/baseline/metrics.json",
        "runs/id/seed0/imu/plain/metrics.json",
        "runs/id/seed0/mic/baseline/metrics.json",
    ]  # the baselines and the plain reference are kept for a re-run; no results, no report


# ---------------------------------------------------------------------------------------------
# The real command: exit status 2, no traceback; --debug shows it


SUBPROCESS_CASES = ["config-mistyped-key", "utd-corrupt-mat"]


def test_subprocess_exit_code(tmp_path: Path) -> None:
    """The installed command's exit status and stderr (run side by side: importing takes s)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    started = []
    for case_id in SUBPROCESS_CASES:
        case = next(c for c in CASES if c.id == case_id)
        tmp = tmp_path / case_id
        tmp.mkdir()
        config, out = case.build(tmp), tmp / "out"
        command = [sys.executable, "-m", "dcat.cli", "experiment", str(config), "--out", str(out)]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        started.append((case, out, process))
    for case, out, process in started:
        stdout, stderr = process.communicate(timeout=180)
        _check(process.returncode, stderr, case.expect)
        assert stdout == ""
        assert _finished(out) == {}


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    config = on_manifest(_write_text("mic/t2.csv", "loudness\nn/a\n"))(tmp_path)
    with pytest.raises(ValueError, match=r"mic/t2\.csv: row 1, column 'loudness': 'n/a' is not"):
        main(["experiment", str(config), "--out", str(tmp_path / "out"), "--debug"])
    assert not (tmp_path / "out").exists()


def test_catalogue_ids_are_unique_and_in_the_docs() -> None:
    ids = [c.id for c in CASES + CHECKPOINT_CASES]
    assert len(ids) == len(set(ids))
    docs = (Path(__file__).parents[1] / "docs" / "errors.md").read_text()
    table = docs.split("## Export and predict")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    assert [row.rsplit("`", 2)[-2] for row in rows] == ids
    assert f"**{len(ids)} cases**" in table


if __name__ == "__main__":  # prints docs/errors.md's rows with the messages as printed now
    import contextlib
    import io
    import tempfile

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train_finished_run(Path(tempfile.mkdtemp()))
    for number, case in enumerate(CASES + CHECKPOINT_CASES, start=1):
        with tempfile.TemporaryDirectory() as tmp:
            config = case.build(Path(tmp))
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                main(["experiment", str(config), "--out", str(Path(tmp) / "out"), *case.args])
            message = stderr.getvalue().strip().replace(tmp, "…").replace("|", "\\|")
        print(f"| {number} | {case.what} | {case.where} | `{message}` | `{case.id}` |")
