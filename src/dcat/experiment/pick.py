"""The dcat pick: per split, seed and target, the model with the best validation F1.

Among every model trained for one target in one split and seed (the baseline, every method, λ
value and source), the pick is the one with the highest **validation** macro-F1 (rule
``"seed"``). Rule ``"mean"`` picks one configuration for every seed of a split and target: the
one whose validation F1 averaged over the seeds is highest. With the validation subjects
rotating with the seed (``val_rotation``) that average is a grouped cross-validation score, less
at the mercy of one held-out subject. Test metrics are never read. Ties go to the simpler
model: the baseline first, then the methods in the order the plan trained them. Refits
(retrained on training and validation data) are never candidates: they have no held-out
validation score; ``dcat export --pick`` exports the refit of the pick when there is one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dcat.errors import DcatError

__all__ = ["PICK_RULES", "find_pick", "mark_picks"]

PICK_RULES = ("seed", "mean")
"""``seed``: the best validation F1 of each seed; ``mean``: the configuration of best validation
F1 averaged over the seeds."""


def _score(record: dict[str, Any]) -> float:
    value = record.get("val_f1")
    return float("-inf") if value is None else float(value)  # no validation part: never picked


def _simplest_first(records: Sequence[dict[str, Any]], members: list[int]) -> list[int]:
    # max() keeps the first of equal keys; the baseline sorts first, then the plain
    # reference, then the plan's order
    simple = {"baseline": 0, "plain": 1}
    return sorted(members, key=lambda i: (simple.get(records[i]["method"], 2), i))


def mark_picks(records: Sequence[dict[str, Any]], rule: str = "seed") -> list[dict[str, Any]]:
    """Copies of ``records`` with ``pick`` set: ``True`` for each group's pick, else ``False``.

    Args:
        records: Result records (``split``, ``seed``, ``target``, ``method``, ``source``,
            ``lambda``, ``val_f1``), in the order the plan trained them (baselines first).
        rule: ``"seed"`` or ``"mean"`` (:data:`PICK_RULES`). Under ``"mean"`` only
            configurations trained in every seed of the group compete.

    Returns:
        The records in the same order, each with a boolean ``pick``.

    Raises:
        DcatError: An unknown rule.
    """
    if rule not in PICK_RULES:
        raise DcatError(f"pick rule must be one of {list(PICK_RULES)}, got {rule!r}")
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        if not r.get("refit"):
            seed = () if rule == "mean" else (r["seed"],)
            key = (r["split"], *seed, r["target"])
            groups[key].append(i)
    picked: set[int] = set()
    for members in groups.values():
        if rule == "seed":
            picked.add(max(_simplest_first(records, members), key=lambda i: _score(records[i])))
            continue
        configs: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i in members:
            configs[_config_of(records[i])].append(i)
        seeds = {records[i]["seed"] for i in members}
        complete = {
            c: rows for c, rows in configs.items() if {records[i]["seed"] for i in rows} == seeds
        }
        # the first record of each configuration stands for it in the tie order
        first = {rows[0]: c for c, rows in complete.items()}
        mean = {
            c: sum(_score(records[i]) for i in rows) / len(rows) for c, rows in complete.items()
        }
        best = max(_simplest_first(records, list(first)), key=lambda i: mean[first[i]])
        picked.update(complete[first[best]])
    return [{**r, "pick": i in picked} for i, r in enumerate(records)]


def _config_of(record: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a model but the seed: method, source and λ."""
    return tuple(record.get(k) for k in ("method", "source", "lambda"))


def find_pick(
    results_dir: str | Path,
    target: str,
    *,
    split: str | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The pick record of ``target`` in a results folder, for ``dcat export --pick``.

    Args:
        results_dir: A folder ``dcat experiment`` wrote (holding ``results.json``).
        target: The target modality.
        split: The split kind; needed only when the picks span several.
        seed: The seed; default the seed whose pick has the median validation F1 (the lower
            of the two middle ones for an even count), a typical model rather than the luckiest.

    Returns:
        The record (that of the pick's refit when the experiment refitted); its ``run`` is
        the run folder, relative to ``results_dir``.

    Raises:
        DcatError: No ``results.json``, no pick for the target, several splits without
            ``split``, or an unknown split or seed (the choices named).
    """
    path = Path(results_dir) / "results.json"
    if not path.is_file():
        raise DcatError(
            f"{path} not found: --pick needs a results folder written by dcat experiment"
        )
    records = json.loads(path.read_text())
    refits = {_identity(r): r for r in records if r.get("refit")}
    picks = [r for r in records if r.get("pick")]
    targets = sorted({r["target"] for r in picks})
    picks = [r for r in picks if r["target"] == target]
    if not picks:
        raise DcatError(f"{path}: no pick for target {target!r} (picked targets: {targets})")
    splits = sorted({r["split"] for r in picks})
    if split is None and len(splits) > 1:
        raise DcatError(f"{path}: target {target!r} has picks in splits {splits}; add --split")
    picks = [r for r in picks if split is None or r["split"] == split]
    if not picks:
        raise DcatError(f"{path}: no {split!r} split; choose from {splits}")
    if seed is None:
        ranked = sorted(picks, key=lambda r: (_score(r), r["seed"]))
        chosen = ranked[(len(ranked) - 1) // 2]
    else:
        found = [r for r in picks if r["seed"] == seed]
        if not found:
            raise DcatError(f"{path}: no seed {seed}; seeds: {sorted(r['seed'] for r in picks)}")
        chosen = found[0]
    return refits.get(_identity(chosen), chosen)


def _identity(record: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a model, refit or not: split, seed, target, method, source and λ."""
    keys = ("split", "seed", "target", "method", "source", "lambda")
    return tuple(record[k] for k in keys)
