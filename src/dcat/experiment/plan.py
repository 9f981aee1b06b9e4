"""The plan of an experiment: every model to train, from the configuration alone.

Baselines come first (each is also the frozen source of the transfers from its modality), then,
per source → target pair, one model per configured method variant and one per extra λ of the
D-CAT sweep. Method names and options are resolved through the method registry
(:mod:`dcat.training.methods`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcat.experiment.config import ExperimentConfig
from dcat.training.methods import MethodVariant, resolve_method

__all__ = ["Job", "method_variants", "plan_jobs"]


@dataclass(frozen=True)
class Job:
    """One model to train: a baseline (``source`` empty) or a transfer.

    Attributes:
        split: Split kind.
        seed: Seed.
        target: Target modality.
        method: ``"baseline"`` or the method variant's tag (``"dcat"``, ``"dcat_no_mcma"``,
            ``"logit_kd"``, ...): it names the run folder and the result record.
        source: Source modality (empty for a baseline).
        weight: λ of the transfer term.
        base: The registered method (``"dcat"`` for ``"dcat_no_mcma"``).
        options: The method's options, sorted ``(name, value)`` pairs.
    """

    split: str
    seed: int
    target: str
    method: str
    source: str = ""
    weight: float | None = None
    base: str = ""
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def mcma(self) -> bool | None:
        return dict(self.options).get("mcma")

    @property
    def folder(self) -> str:
        if self.method == "baseline":
            tag = "baseline"
        else:
            tag = f"{self.method}_from-{self.source}_w{self.weight:g}"
        return f"runs/{self.split}/seed{self.seed}/{self.target}/{tag}"


def method_variants(config: ExperimentConfig) -> list[MethodVariant]:
    """The configured methods with their options resolved through the method registry.

    A ``methods`` entry is a name or a mapping ``{name: ..., option: value}``; see
    :meth:`ExperimentConfig.method_variants` (already checked when the config was read).

    Raises:
        DcatError: An unknown method or option, or one method variant listed twice.
    """
    return config.method_variants()


def plan_jobs(config: ExperimentConfig) -> list[Job]:
    """Every model the configuration asks for, baselines before the transfers that use them."""
    needed = list(dict.fromkeys(m for t in config.transfers for m in (t.target, t.source)))
    if not config.transfers:
        needed = list(config.modalities)
    variants = method_variants(config)
    sweep = resolve_method("dcat")
    jobs: list[Job] = []
    for split in config.splits:
        for seed in config.seeds:
            jobs += [Job(split.kind, seed, m, "baseline") for m in needed]
            for transfer in config.transfers:
                pair = (split.kind, seed, transfer.target)
                for v in variants:
                    weight = config.weight
                    jobs.append(Job(*pair, v.tag, transfer.source, weight, v.name, v.options))
                for lam in config.lambdas:
                    if not (any(v.tag == sweep.tag for v in variants) and lam == config.weight):
                        jobs.append(
                            Job(*pair, sweep.tag, transfer.source, lam, sweep.name, sweep.options)
                        )
    return jobs
