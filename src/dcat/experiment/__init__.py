"""The paper's protocol as a command: the configuration schema and presets
(:mod:`dcat.experiment.config`), the runner (:mod:`dcat.experiment.runner`) and the report
(:mod:`dcat.experiment.report`).

``from dcat.experiment import run_experiment`` keeps working; names are imported on first use,
so reading a configuration imports neither Lightning nor matplotlib.
"""

from __future__ import annotations

from dcat.lazy import lazy_exports

_EXPORTS = {
    "dcat.experiment.config": ["ExperimentConfig", "list_presets", "load_config"],
    "dcat.experiment.plan": ["Job", "plan_jobs"],
    "dcat.experiment.report": ["write_report"],
    "dcat.experiment.runner": ["RESULT_FIELDS", "load_dataset", "run_experiment"],
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
