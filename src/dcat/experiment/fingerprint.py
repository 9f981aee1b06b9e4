"""What made a model: the fingerprint each run folder records, and the check a rerun makes.

A model is reused on a rerun only when the fingerprint of the job that would train it now equals
the one its folder recorded when it was trained: its recipe (:mod:`dcat.experiment.recipe`: data
set and reader options, classes, normalisation, network, training options, method and its
options, λ, seed), its split, a digest of the data it was trained on and the digest of the
source run it learnt from (or of the teacher trained elsewhere: its weights and card). Since a
transfer's fingerprint holds its source baseline's digest, a changed baseline changes every
transfer that depends on it.

A split's subject lists are recorded as the subject ids the names written in the config resolve
to (:func:`dcat.data.resolve_subjects`), as they were when configs gave ids, and beside them a
digest of the split's indices: a list of names and the list of ids it means give one
fingerprint, while a list that now means other subjects (a data set whose subject names are not
its ids) gives another.

Folder layout::

    OUT/runs/<split>/seed<k>/<target>/<method>/fingerprint.json
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dcat.errors import DcatError
from dcat.experiment.config import ExperimentConfig
from dcat.experiment.plan import Job, Part
from dcat.experiment.recipe import Recipe
from dcat.training.run_folder import RunFolder

__all__ = [
    "FINGERPRINT_FILE",
    "Mismatch",
    "digest",
    "find_mismatches",
    "job_fingerprints",
    "mismatch_message",
]

FINGERPRINT_FILE = "fingerprint.json"


def digest(fingerprint: Mapping[str, Any]) -> str:
    """SHA-256 of a fingerprint's canonical JSON."""
    text = json.dumps(fingerprint, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """Tuples → lists, so a fingerprint read back from JSON compares equal."""
    return json.loads(json.dumps(value, default=str))


def job_fingerprints(
    config: ExperimentConfig,
    recipes: Sequence[Recipe],
    *,
    class_names: Sequence[str],
    data_digests: Mapping[str, str],
    split_digests: Mapping[tuple[str, int], str],
    split_subjects: Mapping[str, Mapping[str, list[int] | None]] | None = None,
    teacher_digests: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The fingerprint of every model: its recipe (:meth:`Recipe.fingerprint`) with the
    digests of the data it saw, keyed by its run folder.

    Args:
        config: The experiment (its splits).
        recipes: The plan's recipes, baselines before the transfers that use them.
        class_names: The data set's classes, in label order.
        data_digests: Modality → digest of its arrays and the labels.
        split_digests: ``(split kind, seed)`` → digest of the drawn split's indices.
        split_subjects: Split kind → its subject lists (``train_subjects``, ...) as subject ids,
            recorded instead of the lists as written; ``None``: as written.
        teacher_digests: Modality → the digest of its teacher trained elsewhere
            (:attr:`dcat.training.elsewhere.Teacher.digest`), which a transfer from it records
            instead of a source run.

    Returns:
        Run folder → fingerprint (a JSON-compatible mapping).
    """
    fingerprints: dict[str, dict[str, Any]] = {}
    baseline_of: dict[tuple[str, int, str], str] = {}

    def source_entry(job: Job, part: Part) -> dict[str, Any]:
        """The source run a transfer learnt from, or the samples themselves (``virtual``)."""
        modality = part.modality
        if not part.needs_network:
            derive = config.modalities[modality].derive
            return {
                "modality": modality,
                "samples": data_digests[modality],
                "derive": None if derive is None else derive.model_dump(),
            }
        if modality in (teacher_digests or {}):
            return {"modality": modality, "teacher": (teacher_digests or {})[modality]}
        run = baseline_of[job.split, job.seed, modality]
        return {"modality": modality, "run": run, "digest": digest(fingerprints[run])}

    for recipe in recipes:
        job = recipe.job
        split = next(s for s in config.splits if s.label == job.split)
        split_entry = {
            # new options only when set, so runs made before them still match
            **split.fingerprint(),
            **(split_subjects or {}).get(job.split, {}),
            "seed": job.seed,
            "digest": split_digests[job.split, job.seed],
        }
        entries = [source_entry(job, p) for p in job.parts]
        fingerprint = recipe.fingerprint(
            classes=list(class_names),
            data_digest=data_digests[job.target],
            split=split_entry,
            sources=[e for i, e in enumerate(entries) if e not in entries[:i]],
        )
        if not job.parts:
            baseline_of[job.split, job.seed, job.target] = job.folder
        fingerprints[job.folder] = _plain(fingerprint)
    return fingerprints


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """A run folder whose recorded fingerprint differs from the job's now.

    Attributes:
        run: The run folder, relative to the results folder.
        changes: ``(key path, old, new)`` for each differing setting; empty when the folder
            records no fingerprint (made by an older dcat).
    """

    run: str
    changes: tuple[tuple[str, Any, Any], ...]

    def describe(self) -> str:
        if not self.changes:
            return f"{self.run}: no {FINGERPRINT_FILE} (trained by an older dcat)"
        shown = ", ".join(f"{key} {_short(old)} → {_short(new)}" for key, old, new in self.changes)
        return f"{self.run}: {shown}"


def _short(value: Any) -> str:
    text = repr(value)
    if isinstance(value, str) and len(value) == 64:  # a digest: its first characters say enough
        text = repr(value[:12] + "…")
    return text if len(text) <= 60 else text[:57] + "…"


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    before, after = _flatten(old), _flatten(new)
    keys = list(dict.fromkeys([*after, *before]))
    return tuple(
        (key, before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)
    )


def find_mismatches(out: Path, fingerprints: Mapping[str, Mapping[str, Any]]) -> list[Mismatch]:
    """The run folders under ``out`` holding a model that another configuration trained.

    A folder without a model (no metrics, no checkpoint) is not reused, so it never mismatches.

    Raises:
        DcatError: A ``fingerprint.json`` that is not valid JSON (the file named).
    """
    found = []
    for run, fingerprint in fingerprints.items():
        run_dir = out / run
        if not RunFolder(run_dir).has_state():
            continue
        path = run_dir / FINGERPRINT_FILE
        if not path.is_file():
            found.append(Mismatch(run, ()))
            continue
        try:
            recorded = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DcatError(f"{path}: cannot read the run's fingerprint ({err})") from err
        changes = _changes(recorded, fingerprint)
        if changes:
            found.append(Mismatch(run, changes))
    return found


def mismatch_message(out: Path, mismatches: Sequence[Mismatch], limit: int = 3) -> str:
    """One line naming the runs that another configuration trained and what differs."""
    shown = "; ".join(m.describe() for m in mismatches[:limit])
    more = f"; and {len(mismatches) - limit} more" if len(mismatches) > limit else ""
    return (
        f"{out}: {len(mismatches)} model(s) there were trained with other settings: {shown}{more}. "
        "Run into a fresh --out folder, or add --retrain-changed to retrain exactly these models "
        "and those that depend on them"
    )
