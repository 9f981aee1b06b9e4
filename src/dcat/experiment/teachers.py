"""Is a transfer's teacher worth learning from? One verdict per split, source and target.

A transfer learns from the frozen baseline of its source modality. Two teachers are flagged,
on the console once a split's baselines of the pair have finished for every seed
(:class:`TeacherWatch`) and in the report under the pair's table
(:func:`dcat.experiment.report.target_sections`), both from :func:`check_teacher`:

* **at chance**: the source baseline's mean validation macro-F1 is within noise of chance
  (docs/design.md#the-report): below ``chance + 2 × noise``, where ``chance = 1 / K`` for
  ``K`` classes (the expected macro-F1 of a uniform random guess when the classes are
  balanced; a constant predictor scores less) and ``noise`` is the larger of the standard
  deviation of that validation F1 over the seeds (0 with one seed) and the binomial standard
  error of a chance-level accuracy on the smallest validation part, ``sqrt(c (1 − c) / n)``;
* **weaker than its target**: its mean validation F1 is below that of the target's own
  baseline, over the seeds both have.

Only validation scores are read: the verdict can never be tuned on test metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dcat.data import Split
from dcat.experiment.config import ExperimentConfig
from dcat.experiment.plan import Job

__all__ = [
    "NOISE_SPREAD",
    "TeacherCheck",
    "TeacherWatch",
    "check_teacher",
    "split_val_samples",
    "teacher_lines",
]

NOISE_SPREAD = 2.0
"""A source is at chance when its mean validation F1 is below ``chance + NOISE_SPREAD · noise``."""


@dataclass(frozen=True)
class TeacherCheck:
    """A source's baseline against chance and against its target's baseline, in one split.

    Attributes:
        split: Split kind.
        source: Source modality.
        target: Target modality.
        seeds: The seeds the means are over (those both baselines have a validation F1 for;
            the source's alone when the target's baseline has none).
        source_f1: Mean validation macro-F1 of the source's baseline.
        source_std: Its sample standard deviation over ``seeds`` (0 with one seed).
        target_f1: Mean validation macro-F1 of the target's baseline, or ``None``.
        classes: Number of classes ``K``.
        chance: ``1 / K``.
        noise: ``max(source_std, sqrt(chance · (1 − chance) / n))``, ``n`` the smallest
            validation part of ``seeds`` (the binomial term is 0 when ``n`` is unknown).
    """

    split: str
    source: str
    target: str
    seeds: tuple[int, ...]
    source_f1: float
    source_std: float
    target_f1: float | None
    classes: int
    chance: float
    noise: float

    @property
    def at_chance(self) -> bool:
        """Whether the source's validation F1 is within noise of chance."""
        return self.source_f1 < self.chance + NOISE_SPREAD * self.noise

    @property
    def weaker(self) -> bool:
        """Whether the source's validation F1 is below its target's baseline's."""
        return self.target_f1 is not None and self.source_f1 < self.target_f1

    def message(self) -> str | None:
        """The one line a user must see before trusting a Δ, or ``None`` for a sound teacher.

        A source at chance gets that line (the graver one); otherwise a weaker source gets its own.
        """
        source = f"source {self.source} (val F1 {self.source_f1:.3f})"
        if self.at_chance:
            margin = NOISE_SPREAD * self.noise
            return (
                f"{source} is at chance ({self.chance:.3f} for {self.classes} classes, noise "
                f"±{margin:.3f}): a transfer to {self.target} has nothing to learn from it"
            )
        if self.weaker:
            return (
                f"{source} is weaker than target {self.target} ({self.target_f1:.3f}): "
                "transfer from a weaker source rarely helps"
            )
        return None


def _val_f1(records: Iterable[Mapping[str, Any]], split: str, modality: str) -> dict[int, float]:
    """Seed → validation F1 of ``modality``'s baseline in ``split`` (refits and models without
    a validation score left out)."""
    out = {}
    for r in records:
        value = r.get("val_f1")
        if (
            r["split"] == split and r["target"] == modality and r["method"] == "baseline"
            and not r.get("refit") and value is not None and not math.isnan(value)
        ):  # fmt: skip
            out[r["seed"]] = float(value)
    return out


def check_teacher(
    records: Iterable[Mapping[str, Any]],
    split: str,
    source: str,
    target: str,
    num_classes: int,
    val_samples: Mapping[tuple[str, int], int] | None = None,
) -> TeacherCheck | None:
    """The verdict on ``source``'s baseline as the teacher of ``target`` in ``split``.

    Args:
        records: Result records (``split``, ``seed``, ``target``, ``method``, ``val_f1``,
            optionally ``refit``), as ``results.json`` holds them.
        split: Split kind.
        source: Source modality.
        target: Target modality.
        num_classes: Number of classes ``K`` (chance is ``1 / K``).
        val_samples: ``(split, seed)`` → samples in that seed's validation part
            (:func:`split_val_samples`); without it, noise is the seed spread alone.

    Returns:
        :class:`TeacherCheck`, or ``None`` when the source's baseline has no validation F1 in
        ``split``.
    """
    records = list(records)
    teacher, student = _val_f1(records, split, source), _val_f1(records, split, target)
    seeds = sorted(set(teacher) & set(student)) or sorted(teacher)
    if not seeds:
        return None
    scores = np.array([teacher[s] for s in seeds])
    std = float(scores.std(ddof=1)) if len(scores) > 1 else 0.0
    chance = 1.0 / num_classes
    known: Mapping[tuple[str, int], int] = val_samples or {}
    sizes = [known[split, s] for s in seeds if (split, s) in known]
    binomial = math.sqrt(chance * (1.0 - chance) / min(sizes)) if sizes else 0.0
    target_f1 = float(np.mean([student[s] for s in seeds])) if student else None
    return TeacherCheck(
        split, source, target, tuple(seeds), float(scores.mean()), std, target_f1,
        num_classes, chance, max(std, binomial),
    )  # fmt: skip


def teacher_lines(
    records: Iterable[Mapping[str, Any]],
    split: str,
    label: str,
    target: str,
    num_classes: int,
    val_samples: Mapping[tuple[str, int], int] | None = None,
) -> list[str]:
    """The warning lines of a transfer from ``label`` (one source, or ``+``-joined sources,
    each checked) to ``target`` in ``split``; empty when every teacher is sound."""
    records = list(records)
    lines = []
    for source in dict.fromkeys(label.split("+")):
        check = check_teacher(records, split, source, target, num_classes, val_samples)
        message = check.message() if check is not None else None
        if message is not None:
            lines.append(message)
    return lines


def split_val_samples(folder: str | Path) -> dict[tuple[str, int], int]:
    """``(split, seed)`` → validation samples, from the ``splits/*.json`` a results folder
    holds; empty when it has none (a folder written by hand, or an older one)."""
    out = {}
    for path in sorted((Path(folder) / "splits").glob("*.json")):
        split = Split.load(path)
        out[split.label, split.seed] = len(split.val)
    return out


class TeacherWatch:
    """Says each teacher's warning on the console once, as soon as every seed's baselines of
    its source and target have finished in a split (the transfers of the last seed follow).

    Args:
        config: The experiment: its transfers name the pairs, its seeds what "every" means.
        num_classes: Number of classes.
        say: Takes each line (the run's console).
    """

    def __init__(
        self, config: ExperimentConfig, num_classes: int, say: Callable[[str], None]
    ) -> None:
        self._pairs: Sequence[tuple[str, str]] = list(
            dict.fromkeys((m, t.target) for t in config.transfers for m in t.modalities)
        )
        self._seeds = set(config.seeds)
        self._classes, self._say = num_classes, say
        self._records: list[dict[str, Any]] = []
        self._sizes: dict[tuple[str, int], int] = {}
        self._said: set[tuple[str, str, str]] = set()

    def add(self, job: Job, metrics: Mapping[str, Any], val_samples: int | None = None) -> None:
        """A finished model: its job, its ``metrics.json`` and its validation part's size;
        says the warnings it completes (only baselines complete any)."""
        if job.method != "baseline" or job.refit:
            return
        split = job.split
        val_f1 = metrics.get("val", {}).get("f1")
        self._records.append(
            {"split": split, "seed": job.seed, "target": job.target, "method": job.method,
             "val_f1": val_f1}
        )  # fmt: skip
        if val_samples:
            self._sizes[split, job.seed] = val_samples
        for source, target in self._pairs:
            key = (split, source, target)
            if key in self._said or not all(
                self._seeds <= self._finished(split, m) for m in (source, target)
            ):
                continue
            self._said.add(key)
            for line in teacher_lines(
                self._records, split, source, target, self._classes, self._sizes
            ):
                self._say(f"warning, {split} split: {line}")

    def _finished(self, split: str, modality: str) -> set[int]:
        """The seeds whose baseline of ``modality`` finished in ``split``."""
        return {r["seed"] for r in self._records if r["split"] == split and r["target"] == modality}
