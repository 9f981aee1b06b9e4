"""A model's recipe: what builds it is what its fingerprint records, field for field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from dcat.data import load_utd_mhad_embedded
from dcat.experiment.build import build_model, build_net, net_of
from dcat.experiment.config import load_config
from dcat.experiment.fingerprint import _changes, digest, job_fingerprints
from dcat.experiment.plan import plan_jobs
from dcat.experiment.recipe import NetworkRecipe, Recipe
from dcat.training.tasks import TransferTask
from test_experiment import TINY


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp("recipe") / "config.yaml"
    path.write_text(yaml.safe_dump({**TINY, "seeds": [0], "lambdas": []}))
    config = load_config(path)
    data = load_utd_mhad_embedded(steps={"imu": 32, "skeleton": 16}, subjects=[1, 2, 3, 4])
    return config, data, [Recipe.of(config, job) for job in plan_jobs(config)]


def _fingerprints(config, recipes) -> dict:
    return job_fingerprints(
        config,
        recipes,
        class_names=["a", "b"],
        data_digests=dict.fromkeys(config.modalities, "d" * 64),
        split_digests={("ood", 0): "s" * 64},
    )


@dataclasses.dataclass(frozen=True)
class WiderNetwork(NetworkRecipe):
    """A network recipe with an option the fingerprint code has never heard of."""

    width_scale: float = 1.0


def test_a_new_network_option_changes_the_fingerprint_with_no_edit_to_it(setup) -> None:
    config, _, recipes = setup
    baseline = next(r for r in recipes if r.job.method == "baseline" and r.job.target == "imu")
    fields = {f.name: getattr(baseline.network, f.name) for f in dataclasses.fields(NetworkRecipe)}
    wider = [
        dataclasses.replace(r, network=WiderNetwork(**fields, width_scale=scale))
        for scale in (1.0, 2.0)
        for r in [baseline]
    ]
    before = _fingerprints(config, recipes)[baseline.job.folder]
    one, two = (_fingerprints(config, [r])[baseline.job.folder] for r in wider)
    assert one["network"] == {**before["network"], "width_scale": 1.0}
    assert digest(one) != digest(before) and digest(two) != digest(one)
    assert _changes(one, two) == (("network.width_scale", 1.0, 2.0),)


def test_a_new_recipe_section_is_recorded(setup) -> None:
    config, _, recipes = setup

    @dataclasses.dataclass(frozen=True)
    class WithTeacher(Recipe):
        teacher: str = "from elsewhere"

    (recipe,) = [r for r in recipes if r.job.method == "plain"]
    extended = WithTeacher(**{f.name: getattr(recipe, f.name) for f in dataclasses.fields(recipe)})
    fingerprint = _fingerprints(config, [extended])[recipe.job.folder]
    assert fingerprint["teacher"] == "from elsewhere"


def test_the_plain_reference_recipe_has_no_attention_and_records_no_width(setup) -> None:
    config, data, recipes = setup
    (plain,) = [r for r in recipes if r.job.method == "plain"]
    assert (plain.network.attention, plain.network.aux_head) == ("none", False)
    fingerprint = _fingerprints(config, recipes)[plain.job.folder]
    assert "d_out" not in fingerprint["network"] and fingerprint["method"] == {"name": "plain"}
    net = net_of(plain, data)
    assert net.attention is None and net.architecture()["attention"] == "none"


def test_a_network_is_built_from_its_recipe_alone(setup) -> None:
    config, data, recipes = setup
    for recipe in recipes:
        job = recipe.job
        from_config = build_net(config, data, job.target, job.seed, plain=job.method == "plain")
        from_recipe = net_of(recipe, data)
        assert from_recipe.architecture() == from_config.architecture()
        for (name, a), b in zip(
            from_recipe.state_dict().items(), from_config.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), name
    # a recipe's network, changed, builds another network: the config is not read again
    baseline = next(r for r in recipes if r.job.target == "imu" and r.job.method == "baseline")
    narrower = dataclasses.replace(
        baseline, network=dataclasses.replace(baseline.network, options={"widths": [4, 4, 4]})
    )
    assert net_of(narrower, data).encoder.d_model == 4


def test_a_transfer_recipe_builds_its_task_with_its_terms(setup, tmp_path: Path) -> None:
    _, data, recipes = setup
    (dcat,) = [r for r in recipes if r.job.method == "dcat"]
    source = net_of(next(r for r in recipes if r.job.target == "skeleton"), data)
    task = build_model(dcat, data, {"skeleton": source}, {})
    assert isinstance(task, TransferTask) and [s.method for s in task.specs] == ["dcat"]
    assert task.specs[0].weight == dcat.job.parts[0].weight
    assert dcat.train.seed == dcat.job.seed and dcat.train.max_epochs == TINY["train"]["max_epochs"]
