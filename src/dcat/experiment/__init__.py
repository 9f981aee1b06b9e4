"""The paper's protocol as a command: the configuration schema and presets
(:mod:`dcat.experiment.config`), the runner (:mod:`dcat.experiment.runner`) and the report
(:mod:`dcat.experiment.report`).

``from dcat.experiment import run_experiment`` keeps working; names are imported on first use,
so reading a configuration imports neither Lightning nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExperimentConfig": "dcat.experiment.config",
    "load_config": "dcat.experiment.config",
    "list_presets": "dcat.experiment.config",
    "Job": "dcat.experiment.plan",
    "RESULT_FIELDS": "dcat.experiment.runner",
    "load_dataset": "dcat.experiment.runner",
    "plan_jobs": "dcat.experiment.plan",
    "run_experiment": "dcat.experiment.runner",
    "write_report": "dcat.experiment.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dcat.experiment' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
