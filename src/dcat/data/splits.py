"""Train / validation / test splits: in-distribution (ID) and out-of-distribution (OOD).

* ``"id"``: a stratified random split; subjects appear in several parts (docs/design.md, "Splits").
* ``"ood"``: subject-disjoint, no subject in two parts; either explicit subject lists (e.g.
  UTD-MHAD's cross-subject protocol, train 1, 3, 5, 7 / test 2, 4, 6, 8) or groups drawn at
  random by scikit-learn's ``GroupShuffleSplit``. Validation subjects are taken from the
  training subjects.

Subject lists are written as the subjects are named in the data (``"anna"``, ``"Verity"``,
``1``): :func:`resolve_subjects` turns them into the subject ids :func:`make_split` works on.

Splits are data: :meth:`Split.save` writes them as JSON beside the results, each part's subjects
by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, train_test_split

from dcat.errors import DcatError, did_you_mean
from dcat.io.atomic import write_atomic
from dcat.nn.labels import UNLABELLED

__all__ = [
    "Split",
    "labelled_share",
    "left_out",
    "loose_name",
    "make_split",
    "resolve_subjects",
    "sort_names",
    "subject_name",
]

SplitKind = Literal["id", "ood"]

_SHOWN_SUBJECTS = 30  # an error lists at most this many of the data set's subjects


def subject_name(subject: int, subject_names: Mapping[int, str] | None = None) -> str:
    """The name of subject id ``subject`` as written in the data.

    Args:
        subject: A subject id (an entry of :attr:`PairedDataset.subjects`).
        subject_names: Id → name, when the reader assigned the ids
            (:attr:`PairedDataset.subject_names`).

    Returns:
        ``subject_names[subject]`` when given, else the number as text (``"7"``).
    """
    return (subject_names or {}).get(int(subject), str(int(subject)))


def _natural(name: str) -> tuple[tuple[int | str, ...], str]:
    # re.split with a group alternates text and digit runs, so the kinds line up by position
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name


def loose_name(name: str) -> str:
    """``name`` without case, white space or leading zeros of numbers: ``" S01 "`` → ``"s1"``.

    Subject names are compared as written; two names with one loose name (``01`` and ``1``,
    ``Anna`` and ``anna``) are most often one person written two ways, which readers and
    splits refuse with a did-you-mean.
    """
    text = "".join(name.split()).casefold()
    return re.sub(r"\d+", lambda number: str(int(number.group())), text)


def sort_names(names: Iterable[str]) -> list[str]:
    """Subject names in natural order, numbers numerically: ``s2`` before ``s10``, ``9``
    before ``10``."""
    return sorted(set(names), key=_natural)


def _listed(names: Iterable[str]) -> str:
    names = sort_names(names)
    shown = ", ".join(names[:_SHOWN_SUBJECTS])
    return shown if len(names) <= _SHOWN_SUBJECTS else f"{shown}, … ({len(names)} in all)"


def resolve_subjects(
    subjects: Sequence[int] | np.ndarray,
    subject_names: Mapping[int, str] | None,
    wanted: Sequence[int | str],
    field: str,
) -> list[int]:
    """The subject ids of a subject list written as the subjects are named in the data.

    The name of id ``i`` is ``subject_names[i]`` when given, else ``str(i)``; an entry names
    the subject whose name is ``str(entry)``. So YAML's ``1`` names a subject written ``1``,
    ``anna`` names ``anna``, and ``7`` does not name ``07`` (quote such names: YAML reads an
    unquoted ``010`` as the number 8).

    Args:
        subjects: ``(N,)`` subject ids of the samples; only subjects with samples are matched.
        subject_names: Id → name as written in the data (:attr:`PairedDataset.subject_names`);
            ids without one are named by their number.
        wanted: The list as written (names or numbers).
        field: Where the list was written, to start the message with (e.g.
            ``"config: splits[0].train_subjects"``).

    Returns:
        The subject ids, in the order of ``wanted``.

    Raises:
        DcatError: An entry that names no subject of the data (the message lists the subjects
            it has), a subject listed twice, or a name that two subject ids share.
    """
    by_name: dict[str, list[int]] = {}
    for subject in np.unique(np.asarray(subjects, dtype=np.int64)).tolist():
        by_name.setdefault(subject_name(subject, subject_names), []).append(subject)
    ids: list[int] = []
    for entry in wanted:
        name = str(entry)
        found = by_name.get(name)
        if found is None:
            raise DcatError(
                f"{field}: subject {entry!r} is not in the data set; its subjects are: "
                f"{_listed(by_name)}{_hint(entry, by_name)}"
            )
        if len(found) > 1:
            raise DcatError(
                f"{field}: subject {name!r} names {len(found)} subjects of the data set "
                f"(ids {found}); the reader's subject names are not unique"
            )
        if found[0] in ids:
            raise DcatError(f"{field}: subject {name!r} is listed twice")
        ids.append(found[0])
    return ids


def _hint(entry: int | str, names: Iterable[str]) -> str:
    """A hint for a number given where the names are zero-padded text (``005``), or a close
    name for a misspelt one (never a number for a number: ``2`` for ``12`` helps no one)."""
    names = list(names)
    padded = [n for n in names if len(n) > 1 and n.isdigit() and n.startswith("0")]
    if isinstance(entry, int) and padded:
        example = sort_names(padded)[0]
        return (
            f" (names with leading zeros are text: quote them, e.g. '{example}'; YAML reads "
            "an unquoted 010 as the number 8)"
        )
    if isinstance(entry, int) or entry.isdigit():
        return ""
    return did_you_mean([entry], names)


@dataclass(frozen=True)
class Split:
    """Indices of the three parts of a split, into one dataset.

    Attributes:
        kind: ``"id"`` or ``"ood"``.
        seed: The seed that drew it.
        train: Sorted training indices.
        val: Sorted validation indices.
        test: Sorted test indices.
        hidden: Sorted training indices whose labels are hidden (training data of a
            label-efficiency point: unlabelled paired recordings); empty by default.
        name: Names the split in run folders and reports (default: ``kind``).
    """

    kind: str
    seed: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    hidden: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    name: str = ""

    @property
    def label(self) -> str:
        """The split's name: ``name``, else ``kind``."""
        return self.name or self.kind

    def parts(self) -> dict[str, np.ndarray]:
        """Part name (``train``, ``val``, ``test``) → its indices."""
        return {"train": self.train, "val": self.val, "test": self.test}

    def hiding(self, labelled: np.ndarray, name: str) -> Split:
        """This split with only the training samples ``labelled`` keeping their labels.

        Args:
            labelled: Training indices whose labels stay known (a subset of ``train``).
            name: The new split's name.

        Raises:
            DcatError: An index of ``labelled`` that is not a training index.
        """
        labelled = np.asarray(labelled, dtype=np.int64)
        stray = np.setdiff1d(labelled, self.train)
        if stray.size:
            raise DcatError(f"labelled samples {stray[:5].tolist()} are not training samples")
        hidden = np.union1d(np.setdiff1d(self.train, labelled), self.hidden)
        return Split(self.kind, self.seed, self.train, self.val, self.test, hidden, name)

    def to_dict(
        self, subjects: np.ndarray | None = None, subject_names: Mapping[int, str] | None = None
    ) -> dict:
        """The split as plain JSON values.

        Args:
            subjects: ``(N,)`` subject ids of the dataset the indices point into; when given,
                each part's subjects are listed too (``train_subjects``, ...).
            subject_names: Id → name as written in the data; the subjects are listed by
                :func:`subject_name`, in natural order.

        Returns:
            ``kind``, ``seed``, each part's indices and, with ``subjects``, its subject names.
        """
        out: dict = {"kind": self.kind, "seed": self.seed}
        if self.name:
            out["name"] = self.name
        for name, idx in self.parts().items():
            out[name] = idx.tolist()
            if subjects is not None:
                out[f"{name}_subjects"] = sort_names(
                    subject_name(s, subject_names) for s in np.unique(subjects[idx]).tolist()
                )
        if self.hidden.size:
            out["hidden"] = self.hidden.tolist()
        return out

    def save(
        self,
        path: str | Path,
        subjects: np.ndarray | None = None,
        subject_names: Mapping[int, str] | None = None,
    ) -> None:
        """Write the split as JSON: indices, and each part's subjects by name when ``subjects``
        is given (see :meth:`to_dict`)."""
        write_atomic(path, json.dumps(self.to_dict(subjects, subject_names)))

    @classmethod
    def load(cls, path: str | Path) -> Split:
        data = json.loads(Path(path).read_text())
        train, val, test, hidden = (
            np.asarray(data.get(p, []), dtype=np.int64) for p in ("train", "val", "test", "hidden")
        )
        return cls(data["kind"], int(data["seed"]), train, val, test, hidden, data.get("name", ""))


def labelled_share(
    labels: Sequence[int] | np.ndarray,
    subjects: Sequence[int] | np.ndarray,
    train: np.ndarray,
    fraction: float,
    seed: int,
) -> np.ndarray:
    """The training samples that keep their labels at a labelled share ``fraction``.

    Per class, the labelled training samples are put in one order fixed by ``seed``: its
    subjects in a seeded order, each subject's samples in a seeded order, taken in turns (one
    per subject in each round). The share takes the first ``max(1, round(fraction · n_c))`` of
    class ``c``'s ``n_c`` samples. So the subsets are stratified by class (exactly) and subject
    (in turns), every class keeps a label at any share above 0, and a smaller share's subset
    lies inside a larger one's (nested: the order does not depend on ``fraction``).

    Args:
        labels: ``(N,)`` class indices, ``UNLABELLED`` for samples without one (never kept).
        subjects: ``(N,)`` subject ids.
        train: The training indices to choose from.
        fraction: The labelled share in ``[0, 1]``; 0 keeps none.
        seed: Fixes the order.

    Returns:
        Sorted indices into the data set (a subset of ``train``).

    Raises:
        DcatError: A share outside ``[0, 1]``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise DcatError(f"a labelled share must be in [0, 1], got {fraction}")
    labels, subjects = np.asarray(labels), np.asarray(subjects)
    train = np.sort(np.asarray(train, dtype=np.int64))
    rng = np.random.default_rng([seed, 28])  # a stream of its own: the split's draws stay
    kept: list[np.ndarray] = []
    for label in np.unique(labels[train]).tolist():
        if label == UNLABELLED:
            continue
        ordered = _in_turns(train[labels[train] == label], subjects, rng)
        if fraction > 0:
            kept.append(ordered[: max(1, round(fraction * len(ordered)))])
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)


def _in_turns(indices: np.ndarray, subjects: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``indices`` ordered by subject turns: subjects and each subject's samples shuffled."""
    own = [indices[subjects[indices] == s] for s in np.unique(subjects[indices]).tolist()]
    queues = [rng.permutation(group) for group in own]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    rounds = max(len(q) for q in queues)
    return np.array([q[r] for r in range(rounds) for q in queues if r < len(q)], dtype=np.int64)


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise DcatError(f"{name} must be in (0, 1), got {value}")


def _stratify(labels: np.ndarray) -> np.ndarray | None:
    # a class with a single sample cannot be stratified; fall back to a plain random split
    _, counts = np.unique(labels, return_counts=True)
    return labels if counts.min() >= 2 else None


def make_split(
    labels: Sequence[int] | np.ndarray,
    subjects: Sequence[int] | np.ndarray,
    kind: SplitKind,
    *,
    seed: int = 0,
    test_size: float = 0.2,
    val_size: float = 0.1,
    train_subjects: Sequence[int] | None = None,
    val_subjects: Sequence[int] | None = None,
    test_subjects: Sequence[int] | None = None,
    val_rotation: bool = False,
    subject_names: Mapping[int, str] | None = None,
) -> Split:
    """Split samples into train / validation / test.

    Unlabelled samples (label :data:`~dcat.nn.labels.UNLABELLED`) are training data only: an
    ID split is drawn over the labelled samples and every unlabelled one joins its training
    part; an OOD split puts a training subject's unlabelled samples in training and leaves a
    validation or test subject's out of every part.

    Args:
        labels: ``(N,)`` class indices (stratification for ``"id"``), or ``UNLABELLED``.
        subjects: ``(N,)`` subject ids (groups for ``"ood"``).
        kind: ``"id"`` (stratified random) or ``"ood"`` (subject-disjoint).
        seed: Random seed.
        test_size: Fraction of samples (ID) or subjects (OOD) in the test part.
        val_size: Fraction of the *training* samples (ID) or subjects (OOD) held out for
            validation.
        train_subjects: OOD only: explicit training subjects (validation subjects are drawn from
            them unless ``val_subjects`` is given).
        val_subjects: OOD only: explicit validation subjects.
        test_subjects: OOD only: explicit test subjects; default: every subject not in train or
            validation.
        val_rotation: OOD only: the validation subjects rotate with the seed instead of being
            drawn: the training subjects form ``k = round(1 / val_size)`` grouped folds
            (:class:`sklearn.model_selection.GroupKFold`) and seed ``s`` holds out fold
            ``s mod k``, so ``k`` consecutive seeds validate on every training subject once.
        subject_names: Id → name as written in the data: messages name the subjects so.

    Returns:
        :class:`Split`.

    Raises:
        DcatError: An unknown kind, a bad fraction, subject lists that overlap or name unknown
            subjects, or a part that comes out empty.

    The subject lists hold subject ids; :func:`resolve_subjects` gives them from the names
    written in a configuration.
    """
    labels = np.asarray(labels)
    subjects = np.asarray(subjects)
    if labels.shape != subjects.shape or labels.ndim != 1:
        raise DcatError(
            f"labels and subjects must be 1-D of one length, got {labels.shape} "
            f"and {subjects.shape}"
        )
    _check_fraction("test_size", test_size)
    _check_fraction("val_size", val_size)
    index = np.arange(len(labels))
    unlabelled = labels == UNLABELLED
    if kind == "id":
        _refuse_ood_options(train_subjects, val_subjects, test_subjects, val_rotation)
        known = index[~unlabelled]
        train, val, test = _id_split(known, labels[known], seed, test_size, val_size)
        train = np.concatenate([train, index[unlabelled]])
    elif kind == "ood":
        train, val, test = _ood(
            index,
            subjects,
            seed,
            test_size,
            val_size,
            train_subjects,
            val_subjects,
            test_subjects,
            val_rotation,
            subject_names,
        )
        # a validation or test subject's unlabelled samples are in no part
        val, test = val[~unlabelled[val]], test[~unlabelled[test]]
    else:
        raise DcatError(f"split kind must be 'id' or 'ood', got {kind!r}")
    split = Split(kind, seed, np.sort(train), np.sort(val), np.sort(test))
    _check_no_empty_part(split, subjects, subject_names)
    return split


def _refuse_ood_options(
    train_subjects: Sequence[int] | None,
    val_subjects: Sequence[int] | None,
    test_subjects: Sequence[int] | None,
    val_rotation: bool,
) -> None:
    """Refuse the options that only an OOD split takes.

    Raises:
        DcatError: A subject list or ``val_rotation`` given for an ID split.
    """
    if train_subjects or val_subjects or test_subjects:
        raise DcatError("subject lists apply to OOD splits only (kind='ood')")
    if val_rotation:
        raise DcatError("val_rotation applies to OOD splits only (kind='ood')")


def _id_split(
    index: np.ndarray, labels: np.ndarray, seed: int, test_size: float, val_size: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stratified random split: test drawn first, then validation from the rest.

    Args:
        index: ``(N,)`` sample indices.
        labels: ``(N,)`` class indices to stratify by.
        seed: Random seed (``seed + 1`` draws validation).
        test_size: Fraction of the samples in the test part.
        val_size: Fraction of the remaining samples in the validation part.

    Returns:
        Unsorted ``train``, ``val`` and ``test`` indices.

    Raises:
        DcatError: scikit-learn cannot draw it (e.g. a part smaller than the classes).
    """
    try:
        train_val, test = train_test_split(
            index, test_size=test_size, random_state=seed, stratify=_stratify(labels)
        )
        train, val = train_test_split(
            train_val, test_size=val_size, random_state=seed + 1,
            stratify=_stratify(labels[train_val]),
        )  # fmt: skip
    except ValueError as err:  # scikit-learn's words, e.g. a part smaller than the classes
        classes = len(np.unique(labels))
        raise DcatError(
            f"cannot draw a stratified id split of {len(labels)} samples of {classes} "
            f"classes with test_size={test_size}, val_size={val_size} (each part needs a "
            f"sample of every class; raise the fractions or add samples): {err}"
        ) from err
    return train, val, test


def _check_no_empty_part(
    split: Split, subjects: np.ndarray, subject_names: Mapping[int, str] | None
) -> None:
    """Refuse a split with an empty part, naming every part's subjects.

    Args:
        split: The drawn split.
        subjects: ``(N,)`` subject ids of the samples the split indexes.
        subject_names: Id → name as written in the data.

    Raises:
        DcatError: The first empty part (train, val, test order).
    """
    for name, idx in split.parts().items():
        if len(idx) == 0:
            shown = "; ".join(
                f"{part} {_bracketed(subjects[i], subject_names) if len(i) else 'none'}"
                for part, i in split.parts().items()
            )
            raise DcatError(
                f"the {split.kind} split (seed {split.seed}) leaves the {name} part empty "
                f"(subjects: {shown})"
            )


def _bracketed(subjects: Iterable[int], subject_names: Mapping[int, str] | None) -> str:
    """``[anna, ben]``: subjects by name, natural order (``[1, 3]`` for plain numbers)."""
    return f"[{', '.join(sort_names(subject_name(s, subject_names) for s in subjects))}]"


def _ood(
    index: np.ndarray,
    subjects: np.ndarray,
    seed: int,
    test_size: float,
    val_size: float,
    train_subjects: Sequence[int] | None,
    val_subjects: Sequence[int] | None,
    test_subjects: Sequence[int] | None,
    val_rotation: bool = False,
    subject_names: Mapping[int, str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    known = set(np.unique(subjects).tolist())
    lists = {
        "train_subjects": train_subjects,
        "val_subjects": val_subjects,
        "test_subjects": test_subjects,
    }
    for name, values in lists.items():
        unknown = sorted(set(values or ()) - known)
        if unknown:
            raise DcatError(
                f"{name} names subjects not in the data: {unknown} (the data has {sorted(known)})"
            )
    given = [set(v) for v in lists.values() if v]
    for i, a in enumerate(given):
        for b in given[i + 1 :]:
            if a & b:
                raise DcatError(
                    f"subject lists overlap: {_bracketed(a & b, subject_names)} in two parts"
                )
    if train_subjects is None and test_subjects is None:
        outer = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        train_val, test = next(outer.split(index, groups=subjects))
    else:
        if test_subjects is None:
            # train_subjects is given here (both None is the branch above)
            test_subjects = sorted(known - set(train_subjects or ()) - set(val_subjects or ()))
        if train_subjects is None:
            train_subjects = sorted(known - set(test_subjects) - set(val_subjects or ()))
        test = index[np.isin(subjects, list(test_subjects))]
        train_val = index[np.isin(subjects, list(train_subjects) + list(val_subjects or ()))]
    if val_subjects:
        if val_rotation:
            raise DcatError("give val_subjects or val_rotation, not both")
        val = train_val[np.isin(subjects[train_val], list(val_subjects))]
        train = train_val[~np.isin(subjects[train_val], list(val_subjects))]
    elif val_rotation:
        groups = subjects[train_val]
        folds = max(2, round(1 / val_size))
        if len(np.unique(groups)) < folds:
            raise DcatError(
                f"val_rotation with val_size={val_size} needs {folds} training subjects (one "
                f"fold each), got {len(np.unique(groups))}"
            )
        rel_train, rel_val = list(GroupKFold(n_splits=folds).split(train_val, groups=groups))[
            seed % folds
        ]
        train, val = train_val[rel_train], train_val[rel_val]
    else:
        if len(np.unique(subjects[train_val])) < 2:
            raise DcatError(
                "an OOD split needs at least 2 training subjects to hold one out for validation"
            )
        inner = GroupShuffleSplit(n_splits=1, test_size=val_size, random_state=seed + 1)
        rel_train, rel_val = next(inner.split(train_val, groups=subjects[train_val]))
        train, val = train_val[rel_train], train_val[rel_val]
    return train, val, test


def left_out(
    split: Split,
    subjects: Sequence[int] | np.ndarray,
    subject_names: Mapping[int, str] | None = None,
    recordings: Sequence[str] | None = None,
    group: str = "subject",
) -> dict[str, int]:
    """The subjects no part of ``split`` takes, and how many samples each has.

    Explicit subject lists may leave subjects out on purpose (a subject with bad recordings).
    A subject left out whose name differs only in case, spaces or leading zeros from one the
    split takes (``01`` beside ``1``) was not meant to be: its samples would silently train and
    test nowhere, so it is refused.

    Args:
        split: The drawn split.
        subjects: ``(N,)`` subject ids of the samples the split indexes.
        subject_names: Id → name as written in the data.
        recordings: ``N`` recording ids, to name the first sample left out.
        group: What a subject stands for (``subject``, ``session``), for the message.

    Returns:
        Name → sample count of each subject left out, in natural order (empty for a split that
        takes every sample).

    Raises:
        DcatError: A subject left out whose loose name (:func:`loose_name`) is that of a
            subject the split takes; names its first sample, the subject and the near name.
    """
    subjects = np.asarray(subjects)
    taken = np.zeros(len(subjects), dtype=bool)
    for indices in split.parts().values():
        taken[indices] = True
    used = {subject_name(s, subject_names) for s in np.unique(subjects[taken]).tolist()}
    near = {loose_name(name): name for name in sort_names(used)}
    counts: dict[str, int] = {}
    for index in np.flatnonzero(~taken).tolist():
        name = subject_name(subjects[index], subject_names)
        if name in used:  # a taken subject's sample left out on purpose (unlabelled, held out)
            continue
        counts[name] = counts.get(name, 0) + 1
        close = near.get(loose_name(name))
        if counts[name] == 1 and close is not None:
            where = f" (recording {recordings[index]!r})" if recordings is not None else ""
            raise DcatError(
                f"the {split.kind} split (seed {split.seed}) leaves sample {index}{where} out "
                f"of every part: its {group} {name!r} is in no part, {group} {close!r} is; did "
                f"you mean {close!r}? ({group} names are compared as written: list {name!r} as "
                f"well, or write it {close!r} in the data)"
            )
    return {name: counts[name] for name in sort_names(counts)}
