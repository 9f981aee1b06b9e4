"""The plan of an experiment: every model to train, from the configuration alone.

Baselines come first (each is also the frozen source of the transfers from its modality), then
the plain reference of each target, then, per transfer, one model per configured method entry
and one per extra λ of the D-CAT sweep. Method names and options are resolved through the
method registry (:mod:`dcat.training.methods`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dcat.experiment.config import ExperimentConfig, SourceConfig, TransferConfig
from dcat.training.methods import get_method, resolve_method

__all__ = ["Job", "Part", "method_labels", "plan_jobs"]


@dataclass(frozen=True)
class Part:
    """One frozen source's term in a transfer: ``weight · L_method(source → target)``.

    Attributes:
        modality: The source modality.
        base: The registered method (``"dcat"`` for ``"dcat_no_mcma"``).
        tag: The method variant's tag.
        options: The method's options, sorted ``(name, value)`` pairs.
        weight: λ of the term.
    """

    modality: str
    base: str
    tag: str
    options: tuple[tuple[str, Any], ...]
    weight: float

    @property
    def needs_network(self) -> bool:
        """Whether the term reads a trained source network, its modality's baseline (from what
        the method declares it reads: :attr:`~dcat.training.methods.TransferMethod.inputs`)."""
        return get_method(self.base).source_network


@dataclass(frozen=True)
class Job:
    """One model to train: a baseline or the plain reference (no ``parts``), or a transfer.

    Attributes:
        split: Split kind.
        seed: Seed.
        target: Target modality.
        method: ``"baseline"``, ``"plain"`` (encoder → pool → head, no attention) or the
            transfer's tag (``"dcat"``, ``"dcat_no_mcma"``, ``"dcat+logit_kd"``, ...): it names
            the run folder and the result record.
        parts: The transfer's terms, one per source and method.
        refit: The same configuration retrained on training and validation data for the
            epoch count its validation chose (``ExperimentConfig.refit``).
    """

    split: str
    seed: int
    target: str
    method: str
    parts: tuple[Part, ...] = ()
    refit: bool = False

    @property
    def source(self) -> str:
        """The source modalities, ``+``-joined (empty for a baseline)."""
        return "+".join(dict.fromkeys(p.modality for p in self.parts))

    @property
    def weight(self) -> float | None:
        """The terms' common λ, or ``None`` (no terms, or terms of different λ)."""
        weights = {p.weight for p in self.parts}
        return weights.pop() if len(weights) == 1 else None

    @property
    def base(self) -> str:
        return "+".join(p.base for p in self.parts)

    @property
    def options(self) -> tuple[tuple[str, Any], ...]:
        """The options of a single-term transfer (empty otherwise)."""
        return self.parts[0].options if len(self.parts) == 1 else ()

    @property
    def mcma(self) -> bool | str | None:
        return next(
            (dict(p.options)["mcma"] for p in self.parts if "mcma" in dict(p.options)), None
        )

    def describe(self) -> dict[str, Any]:
        """Plain values for a run's ``config.yaml``."""
        return {
            "split": self.split, "seed": self.seed, "target": self.target,
            "method": self.method, "source": self.source, "weight": self.weight,
            "base": self.base, "options": [list(o) for o in self.options], "refit": self.refit,
            "parts": [
                {**asdict(p), "options": [list(o) for o in p.options]} for p in self.parts
            ],
        }  # fmt: skip

    def baseline(self, modality: str) -> Job:
        """The baseline of ``modality`` at this job's split and seed (a source's run)."""
        return Job(self.split, self.seed, modality, "baseline")

    @property
    def folder(self) -> str:
        if not self.parts:
            tag = self.method
        else:
            weights = "+".join(f"{w:g}" for w in dict.fromkeys(p.weight for p in self.parts))
            tag = f"{self.method}_from-{self.source}_w{weights}"
        tag += "_refit" if self.refit else ""
        return f"runs/{self.split}/seed{self.seed}/{self.target}/{tag}"


def method_labels(config: ExperimentConfig) -> dict[str, str]:
    """Transfer tag → report label, in column order: the ``methods`` entries (a combined one
    ``"D-CAT + Logit KD"``), then the transfers that set their own methods."""
    labels = {
        "+".join(t.tag for t in terms): " + ".join(t.label for t in terms)
        for terms in config.method_entries()
    }
    for job in plan_jobs(config):
        if job.parts and job.method not in labels:
            found = {v.tag: v.label for v in config.method_variants()}
            labels[job.method] = " + ".join(dict.fromkeys(found[p.tag] for p in job.parts))
    return labels


def _parts(config: ExperimentConfig, transfer: TransferConfig) -> list[tuple[str, list[Part]]]:
    """The transfers one ``transfers`` entry asks for: ``(tag, parts)`` per model."""
    if transfer.explicit:
        parts = []
        for j, item in enumerate(transfer.sources or []):
            assert isinstance(item, SourceConfig)
            v = config.resolve(item.method, f"config: transfers sources[{j}].method")
            weight = config.weight if item.weight is None else item.weight
            parts.append(Part(item.modality, v.name, v.tag, v.options, float(weight)))
        return [("+".join(dict.fromkeys(p.tag for p in parts)), parts)]
    modalities = transfer.modalities
    out = []
    for terms in config.method_entries():
        tag = "+".join(t.tag for t in terms)
        parts = [
            Part(m, t.name, t.tag, t.options, float(config.weight))
            for m in modalities
            for t in terms
        ]
        out.append((tag, parts))
    sweep = resolve_method("dcat")
    swept = any(len(terms) == 1 and terms[0].tag == sweep.tag for terms in config.method_entries())
    for lam in config.lambdas:
        if not (swept and lam == config.weight):
            parts = [Part(m, sweep.name, sweep.tag, sweep.options, float(lam)) for m in modalities]
            out.append((sweep.tag, parts))
    return out


def plan_jobs(config: ExperimentConfig) -> list[Job]:
    """Every model the configuration asks for: per split and seed the baselines (each also the
    frozen source of the transfers from its modality), the plain references, then the
    transfers that use them. A source that only gives samples (``virtual``) gets no baseline."""
    targets = list(dict.fromkeys(t.target for t in config.transfers))
    sources = config.source_modalities(network=True)
    needed = list(dict.fromkeys([*targets, *sources]))
    if not config.transfers:
        needed = targets = list(config.modalities)
    jobs: list[Job] = []
    for split in config.splits:
        for seed in config.seeds:
            jobs += [Job(split.kind, seed, m, "baseline") for m in needed]
            if config.reference:
                jobs += [Job(split.kind, seed, m, "plain") for m in targets]
            for transfer in config.transfers:
                for tag, parts in _parts(config, transfer):
                    jobs.append(Job(split.kind, seed, transfer.target, tag, tuple(parts)))
    return jobs
