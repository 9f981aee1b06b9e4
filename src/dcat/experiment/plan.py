"""The plan of an experiment: every model to train, from the configuration alone.

Baselines come first (each is also the frozen source of the transfers from its modality), then
the plain reference of each target, then, per transfer, one model per configured method entry
and one per extra λ of the D-CAT sweep. Method names and options are resolved through the
method registry (:mod:`dcat.training.methods`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from dcat.errors import DcatError
from dcat.experiment.config import ExperimentConfig, SourceConfig, TransferConfig
from dcat.training.methods import MethodVariant, get_method, resolve_method

__all__ = [
    "Job",
    "Part",
    "learns_without_labels",
    "method_entries",
    "method_labels",
    "method_variants",
    "plan_jobs",
    "resolve_entry",
    "source_modalities",
    "trained_here",
]


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
        sources_refit: It learns from the refits of its sources' baselines
            (``ExperimentConfig.refit_sources``), not from the baselines themselves.
    """

    split: str
    seed: int
    target: str
    method: str
    parts: tuple[Part, ...] = ()
    refit: bool = False
    sources_refit: bool = False

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
            **({"sources_refit": True} if self.sources_refit else {}),
        }  # fmt: skip

    def baseline(self, modality: str) -> Job:
        """The baseline of ``modality`` at this job's split and seed (a source's run), or its
        refit when this job learns from refitted sources."""
        return Job(self.split, self.seed, modality, "baseline", refit=self.sources_refit)

    @property
    def folder(self) -> str:
        if not self.parts:
            tag = self.method
        else:
            weights = "+".join(f"{w:g}" for w in dict.fromkeys(p.weight for p in self.parts))
            tag = f"{self.method}_from-{self.source}_w{weights}"
        tag += "_refit" if self.refit else ""
        return f"runs/{self.split}/seed{self.seed}/{self.target}/{tag}"


def method_entries(config: ExperimentConfig) -> list[tuple[MethodVariant, ...]]:
    """Each ``methods`` entry as its terms: one variant, or several for a combined
    objective written ``dcat+logit_kd`` (every term weighted by λ).

    Raises:
        DcatError: An unknown method or option, a bad option value, or one entry listed
            twice.
    """
    entries: list[tuple[MethodVariant, ...]] = []
    tags: list[str] = []
    for i, entry in enumerate(config.methods):
        where = "config: methods" if isinstance(entry, str) else f"config: methods[{i}]"
        parts = entry.split("+") if isinstance(entry, str) else [entry]
        terms = tuple(resolve_entry(config, part, where) for part in parts)
        if len({t.tag for t in terms}) != len(terms):
            raise DcatError(f"{where}: {entry!r} combines one method with itself")
        tag = "+".join(t.tag for t in terms)
        if tag in tags:
            raise DcatError(f"config: methods[{i}]: {tag!r} is listed twice")
        tags.append(tag)
        entries.append(terms)
    return entries


def resolve_entry(
    config: ExperimentConfig, entry: str | Mapping[str, Any], where: str
) -> MethodVariant:
    """One method entry through the registry; the top-level ``temperature`` is logit KD's
    unless the entry sets its own."""
    variant = resolve_method(entry, where)
    given = entry if isinstance(entry, Mapping) else {}
    if variant.name == "logit_kd" and "temperature" not in given:
        options = {**variant.option_dict, "temperature": float(config.temperature)}
        variant = replace(variant, options=tuple(sorted(options.items())))
    return variant


def method_variants(config: ExperimentConfig) -> list[MethodVariant]:
    """Every method variant the configuration uses, each once: the terms of ``methods``
    (:func:`method_entries`) and of the transfers that set their own methods.

    Raises:
        DcatError: As :func:`method_entries`.
    """
    variants = [t for terms in method_entries(config) for t in terms]
    for i, transfer in enumerate(config.transfers):
        for j, item in enumerate(transfer.sources or []):
            if not isinstance(item, str):
                where = f"config: transfers[{i}].sources[{j}].method"
                variants.append(resolve_entry(config, item.method, where))
    return list({v.tag: v for v in variants}.values())


def trained_here(config: ExperimentConfig, modality: str) -> bool:
    """Whether the experiment trains ``modality``'s source network (its baseline), rather than
    loading a teacher trained elsewhere (``modalities.<m>.teacher``)."""
    return config.modalities[modality].teacher is None


def source_modalities(config: ExperimentConfig, network: bool) -> list[str]:
    """The source modalities that some transfer learns from through a frozen network
    (``network=True``: each needs its baseline) or through its samples (``False``: the
    ``virtual`` method)."""
    found: list[str] = []
    sweep = [True] if config.lambdas else []  # the λ sweep is D-CAT's
    for transfer in config.transfers:
        if transfer.explicit:
            for item in transfer.sources or []:
                assert isinstance(item, SourceConfig)
                kind = get_method(resolve_entry(config, item.method, "config").name)
                if kind.source_network == network:
                    found.append(item.modality)
            continue
        entries = method_entries(config)
        kinds = [get_method(t.name).source_network for e in entries for t in e]
        if network in kinds + sweep:
            found += transfer.modalities
    return list(dict.fromkeys(found))


def method_labels(config: ExperimentConfig, jobs: list[Job] | None = None) -> dict[str, str]:
    """Transfer tag → report label, in column order: the ``methods`` entries (a combined one
    ``"D-CAT + Logit KD"``), then the transfers that set their own methods.

    Args:
        config: The experiment.
        jobs: Its plan, when the caller has it (else it is made again).
    """
    labels = {
        "+".join(t.tag for t in terms): " + ".join(t.label for t in terms)
        for terms in method_entries(config)
    }
    for job in plan_jobs(config) if jobs is None else jobs:
        if job.parts and job.method not in labels:
            found = {v.tag: v.label for v in method_variants(config)}
            labels[job.method] = " + ".join(dict.fromkeys(found[p.tag] for p in job.parts))
    return labels


def _parts(config: ExperimentConfig, transfer: TransferConfig) -> list[tuple[str, list[Part]]]:
    """The transfers one ``transfers`` entry asks for: ``(tag, parts)`` per model."""
    if transfer.explicit:
        parts = []
        for j, item in enumerate(transfer.sources or []):
            assert isinstance(item, SourceConfig)
            v = resolve_entry(config, item.method, f"config: transfers sources[{j}].method")
            weight = config.weight if item.weight is None else item.weight
            parts.append(Part(item.modality, v.name, v.tag, v.options, float(weight)))
        return [("+".join(dict.fromkeys(p.tag for p in parts)), parts)]
    modalities = transfer.modalities
    out = []
    for terms in method_entries(config):
        tag = "+".join(t.tag for t in terms)
        parts = [
            Part(m, t.name, t.tag, t.options, float(config.weight))
            for m in modalities
            for t in terms
        ]
        out.append((tag, parts))
    sweep = resolve_method("dcat")
    swept = any(len(terms) == 1 and terms[0].tag == sweep.tag for terms in method_entries(config))
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
    # a teacher trained elsewhere is loaded, never trained here
    sources = [m for m in source_modalities(config, network=True) if trained_here(config, m)]
    needed = list(dict.fromkeys([*targets, *sources]))
    if not config.transfers:
        needed = targets = list(config.modalities)
    jobs: list[Job] = []
    for split in config.splits:
        # a point without labels: no model that learns from labels (the report says so)
        labels = split.labelled not in (0, [])
        for seed in config.seeds:
            jobs += [Job(split.label, seed, m, "baseline") for m in needed]
            if config.reference:
                jobs += [Job(split.label, seed, m, "plain") for m in targets]
            for transfer in config.transfers:
                for tag, parts in _parts(config, transfer):
                    jobs.append(Job(split.label, seed, transfer.target, tag, tuple(parts)))
        if not labels:
            jobs = [j for j in jobs if j.split != split.label or learns_without_labels(j)]
    return jobs


def learns_without_labels(job: Job) -> bool:
    """Whether ``job`` can train with no labelled sample: a transfer whose every term learns
    without labels (:meth:`TransferMethod.learns_unlabelled`); never a baseline or the plain
    reference."""
    return bool(job.parts) and all(
        get_method(p.base).learns_unlabelled(dict(p.options)) for p in job.parts
    )
