"""The dcat pick: per split, seed and target, the model with the best validation F1.

Among every model trained for one target in one split and seed (the baseline, every method, λ
value and source), the pick is the one with the highest **validation** macro-F1. Test metrics
are never read. Ties go to the simpler model: the baseline first, then the methods in the
order the plan trained them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

__all__ = ["mark_picks"]


def _score(record: dict[str, Any]) -> float:
    value = record.get("val_f1")
    return float("-inf") if value is None else float(value)  # no validation part: never picked


def mark_picks(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``records`` with ``pick`` set: ``True`` for each group's pick, else ``False``.

    Args:
        records: Result records (``split``, ``seed``, ``target``, ``method``, ``val_f1``), in
            the order the plan trained them (baselines first).

    Returns:
        The records in the same order, each with a boolean ``pick``.
    """
    groups: dict[tuple[Any, Any, Any], list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        groups[r["split"], r["seed"], r["target"]].append(i)
    picked = set()
    for members in groups.values():
        # max() keeps the first of equal keys; baselines sort first, then the plan's order
        order = sorted(members, key=lambda i: (records[i]["method"] != "baseline", i))
        picked.add(max(order, key=lambda i: _score(records[i])))
    return [{**r, "pick": i in picked} for i, r in enumerate(records)]
