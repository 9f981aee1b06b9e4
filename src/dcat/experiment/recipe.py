"""What a model is: the recipe the plan makes of each job, once, from the configuration.

A :class:`Recipe` holds everything that makes one model of the grid:

* its network (:class:`NetworkRecipe`: encoder and options, head dropout, attention width and
  placement, auxiliary head);
* its training options (:class:`~dcat.training.config.TrainConfig`, per-modality options and
  the seed resolved);
* how its target's samples are prepared (:class:`DataRecipe`: normalisation, centring,
  augmentation, skeleton layout, derivation);
* its terms: the job's parts, each a method variant with its options and λ, reading what its
  method declares of its source (:attr:`~dcat.training.methods.TransferMethod.inputs`).

:mod:`dcat.experiment.build` makes a network and a task from a recipe and nothing else, and a
run's fingerprint (``fingerprint.json``) is :meth:`Recipe.fingerprint`: the recipe's own fields,
written generically, plus the digests of the data the run saw. An option that changes a model
is therefore in its fingerprint by construction: a new field of a recipe is written, compared
and reported without any edit to :mod:`dcat.experiment.fingerprint`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dcat.errors import DcatError
from dcat.experiment.config import AugmentConfig, DeriveConfig, ExperimentConfig
from dcat.experiment.plan import Job
from dcat.io.skeleton import SkeletonLayout
from dcat.training.config import TrainConfig

if TYPE_CHECKING:
    from dcat.nn.model import ModalityNet

__all__ = ["DataRecipe", "NetworkRecipe", "Recipe", "train_options"]

# Training options that change how a run is shown or stored, never the model it makes.
NOT_IN_RESULT = (
    "progress", "logger", "log_every_n_steps", "num_workers", "cache_dir", "checkpoint_every_s",
)  # fmt: skip
# Options added after runs were recorded, at the value those runs had: left out when they have
# it, so the runs made before them still match (and in when set, so a change retrains).
LATER_TRAIN_OPTIONS = {
    "optimizer": "adam", "schedule": "constant", "warmup_epochs": 0, "label_smoothing": 0.0,
    "unlabelled_ratio": 1.0,
}  # fmt: skip
LATER_AUGMENT_OPTIONS = {"crop": 0.0}


def train_options(config: ExperimentConfig, modality: str, seed: int) -> TrainConfig:
    """The training options of ``modality`` as a target at ``seed``: the experiment's, then the
    modality's own (``""``: the experiment's alone).

    Raises:
        DcatError: An unknown option or a bad value, naming ``train`` or
            ``modalities.<modality>.train``.
    """
    options = {**config.train}
    if modality:
        options.update(config.modalities[modality].train)
    options.setdefault("progress", False)
    options["seed"] = seed
    try:
        return TrainConfig.from_dict(options)
    except ValueError as err:
        where = f"modalities.{modality}.train" if modality else "train"
        raise DcatError(f"config: {where}: {err}") from err


def later_left_out(options: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` without the later-added ones that hold their original value."""
    return {k: v for k, v in options.items() if k not in later or v != later[k]}


def _fields(instance: Any) -> dict[str, Any]:
    """Every dataclass field of ``instance``, mappings copied into plain dicts."""
    return {
        f.name: dict(value) if isinstance(value := getattr(instance, f.name), Mapping) else value
        for f in dataclasses.fields(instance)
    }


@dataclass(frozen=True)
class NetworkRecipe:
    """A network: every field builds it, and every field is in its fingerprint.

    Attributes:
        encoder: The registered encoder.
        options: Its options as configured (a skeleton's ``parents``/``dims`` come from the
            data recipe's layout when the encoder takes them and they are not given).
        dropout: Head dropout.
        d_out: Attention width (left out of the fingerprint without attention: it shapes no
            weight).
        attention: ``serial``, ``residual``, ``side`` or ``none`` (the plain reference).
        aux_head: The auxiliary head on the pooled attention output.
    """

    encoder: str | None
    options: Mapping[str, Any]
    dropout: float
    d_out: int
    attention: str
    aux_head: bool

    @classmethod
    def of(cls, config: ExperimentConfig, modality: str, *, plain: bool = False) -> NetworkRecipe:
        """``modality``'s network in ``config``; with ``plain``, the plain reference's (no
        attention, no auxiliary head)."""
        spec = config.modalities[modality]
        return cls(
            encoder=spec.encoder,
            options=dict(spec.options),
            dropout=config.dropout if spec.dropout is None else spec.dropout,
            d_out=config.d_out,
            attention="none" if plain else spec.attention,
            aux_head=spec.aux_head and not plain,
        )

    def fingerprint(self) -> dict[str, Any]:
        """Every field (a subclass's too), but ``d_out`` without attention."""
        out = _fields(self)
        if self.attention == "none":
            del out["d_out"]
        return out

    def encoder_options(self, layout: SkeletonLayout | None) -> dict[str, Any]:
        """The options the encoder is built with: the configured ones, and for an encoder that
        reads a skeleton (options ``parents`` and ``dims``) those of ``layout`` not given."""
        from dcat.nn.encoders.registry import accepts_option

        options = dict(self.options)
        if layout is not None and self.encoder is not None:
            if accepts_option(self.encoder, "parents"):
                options.setdefault("parents", list(layout.parents))
            if accepts_option(self.encoder, "dims"):
                options.setdefault("dims", layout.dims)
        return options

    def build(
        self, in_channels: int, num_classes: int, seed: int, layout: SkeletonLayout | None = None
    ) -> ModalityNet:
        """A freshly initialised network; the same seed gives the same weights.

        Args:
            in_channels: The encoder's input channels ``C``.
            num_classes: The head's classes ``K``.
            seed: Seeds torch before the weights are drawn.
            layout: The target's skeleton layout, if any (see :meth:`encoder_options`).

        Raises:
            DcatError: Bad encoder options (the encoder's own message).
        """
        import torch

        from dcat.nn.encoders import create_encoder
        from dcat.nn.model import ModalityNet

        torch.manual_seed(seed)
        encoder = create_encoder(str(self.encoder), in_channels, **self.encoder_options(layout))
        return ModalityNet(
            encoder,
            d_out=self.d_out,
            num_classes=num_classes,
            dropout=self.dropout,
            attention=self.attention,  # type: ignore[arg-type]
            aux_head=self.aux_head,
        )


@dataclass(frozen=True)
class DataRecipe:
    """How a model's target samples are prepared.

    Attributes:
        dataset: The registered data set.
        options: Its reader's options.
        normalization: ``zscore``, ``minmax``, ``isotropic`` or ``none``.
        centering: The per-sample centring as configured (``None``: none).
        augment: The training augmentation (``None``: none).
        layout: The skeleton layout (``None``: not a skeleton).
        derive: How the modality is made from another (``None``: read as it is).
    """

    dataset: str
    options: Mapping[str, Any]
    normalization: str
    centering: str | None
    augment: AugmentConfig | None
    layout: SkeletonLayout | None
    derive: DeriveConfig | None

    @classmethod
    def of(cls, config: ExperimentConfig, modality: str) -> DataRecipe:
        kinds = config.data.normalization
        kind = kinds.get(modality, "zscore") if isinstance(kinds, dict) else kinds
        return cls(
            dataset=config.data.dataset,
            options=dict(config.data.options),
            normalization=kind,
            centering=config.data.centering.get(modality),
            augment=config.data.augment.get(modality),
            layout=config.data.layout(modality),
            derive=config.modalities[modality].derive,
        )

    def fingerprint(self, classes: list[str], digest: str) -> dict[str, Any]:
        """The fields, with the data set's ``classes`` and the samples' ``digest``; the
        augmentation, layout (as ``skeleton``) and derivation only when set, so runs made
        before they existed still match."""
        out = {**_fields(self), "classes": list(classes), "digest": digest}
        for key in ("augment", "layout", "derive"):
            del out[key]
        if self.augment is not None:
            out["augment"] = later_left_out(self.augment.model_dump(), LATER_AUGMENT_OPTIONS)
        if self.layout is not None:  # the joints' tree (bones), root, scale and vertical axis
            out["skeleton"] = self.layout.to_dict()
        if self.derive is not None:
            out["derive"] = self.derive.model_dump()
        return out


@dataclass(frozen=True)
class Recipe:
    """One model: its job (split, seed, target, terms), network, training and data.

    Attributes:
        job: The plan's job; its ``parts`` are the terms.
        network: The target's network.
        train: The training options, seed included.
        data: How the target's samples are prepared.
    """

    job: Job
    network: NetworkRecipe
    train: TrainConfig
    data: DataRecipe

    @classmethod
    def of(cls, config: ExperimentConfig, job: Job) -> Recipe:
        """The recipe of ``job`` in ``config``."""
        return cls(
            job=job,
            network=NetworkRecipe.of(config, job.target, plain=job.method == "plain"),
            train=train_options(config, job.target, job.seed),
            data=DataRecipe.of(config, job.target),
        )

    def train_fingerprint(self) -> dict[str, Any]:
        """The training options that change the model."""
        options = {k: v for k, v in _fields(self.train).items() if k not in NOT_IN_RESULT}
        return later_left_out(options, LATER_TRAIN_OPTIONS)

    def method_fingerprint(self) -> dict[str, Any]:
        """The terms: the method of a single-term transfer with its options and λ, or each
        term of a combined one; only the name for a baseline or plain reference."""
        job = self.job
        if len(job.parts) == 1:
            (part,) = job.parts
            return {
                "name": job.method,
                "base": part.base,
                "options": dict(part.options),
                "weight": part.weight,
            }
        if job.parts:
            terms = [
                {"source": p.modality, "base": p.base, "options": dict(p.options),
                 "weight": p.weight}
                for p in job.parts
            ]  # fmt: skip
            return {"name": job.method, "parts": terms}
        return {"name": job.method}

    def fingerprint(
        self,
        *,
        classes: list[str],
        data_digest: str,
        split: dict[str, Any],
        sources: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """What ``fingerprint.json`` records: the recipe, with what only the run knows.

        Args:
            classes: The data set's classes, in label order.
            data_digest: The digest of the target's samples and the labels.
            split: The split entry (its options, subjects, seed and indices' digest).
            sources: Per distinct source of the terms: the run it learnt from (with that run's
                fingerprint digest) or the samples it read.
        """
        out: dict[str, Any] = {
            "data": self.data.fingerprint(classes, data_digest),
            "split": split,
            "network": self.network.fingerprint(),
            "train": self.train_fingerprint(),
            "method": self.method_fingerprint(),
        }
        if len(self.job.parts) == 1:
            out["source"] = sources[0]
        elif self.job.parts:
            out["sources"] = sources
        for field in dataclasses.fields(self):  # a section added to the recipe is recorded too
            if field.name not in ("job", "network", "train", "data"):
                value = getattr(self, field.name)
                out[field.name] = value.fingerprint() if hasattr(value, "fingerprint") else value
        return out
