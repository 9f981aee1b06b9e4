"""The teacher check: a source at chance or weaker than its target is named, in the console and
the report, from one verdict (dcat.experiment.teachers)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from dcat.experiment.config import load_config
from dcat.experiment.plan import Job
from dcat.experiment.runner import run_experiment
from dcat.experiment.teachers import TeacherWatch, check_teacher, split_val_samples, teacher_lines
from test_experiment import TINY

K = 27  # classes: chance 1/27 = 0.037, as for the depth teacher of issue 25
CHANCE = 1 / K


def _baselines(scores: dict[str, list[float]], split: str = "ood") -> list[dict]:
    """Baseline records: modality → validation F1 per seed, plus a transfer that must not count."""
    records = [
        {"split": split, "seed": seed, "target": modality, "method": "baseline", "source": "",
         "val_f1": val, "f1": 0.99}
        for modality, values in scores.items()
        for seed, val in enumerate(values)
    ]  # fmt: skip
    records.append(
        {"split": split, "seed": 0, "target": "imu", "method": "dcat", "source": "depth",
         "val_f1": 0.01, "f1": 0.99}
    )  # fmt: skip
    return records


def test_a_source_at_chance_is_named_with_its_numbers() -> None:
    records = _baselines({"depth": [0.036, 0.035, 0.037], "imu": [0.80, 0.78, 0.82]})
    sizes = {("ood", s): 120 for s in range(3)}
    check = check_teacher(records, "ood", "depth", "imu", K, sizes)
    assert check.seeds == (0, 1, 2)
    assert check.source_f1 == pytest.approx(0.036) and check.target_f1 == pytest.approx(0.80)
    assert check.chance == pytest.approx(CHANCE) and check.classes == K
    # the binomial floor (sqrt(c (1 − c) / 120) = 0.0172) beats the seed spread (0.001)
    assert check.noise == pytest.approx(math.sqrt(CHANCE * (1 - CHANCE) / 120))
    assert check.at_chance and check.weaker
    assert check.message() == (
        "source depth (val F1 0.036) is at chance (0.037 for 27 classes, noise ±0.034): "
        "a transfer to imu has nothing to learn from it"
    )


def test_a_weaker_source_is_named_as_issue_26_asks() -> None:
    records = _baselines({"skeleton": [0.70, 0.72], "imu": [0.80, 0.80]})
    check = check_teacher(records, "ood", "skeleton", "imu", K)
    assert not check.at_chance and check.weaker
    assert check.message() == (
        "source skeleton (val F1 0.710) is weaker than target imu (0.800): "
        "transfer from a weaker source rarely helps"
    )
    # the stronger direction is a sound teacher: no line
    reverse = check_teacher(records, "ood", "imu", "skeleton", K)
    assert not reverse.weaker and not reverse.at_chance and reverse.message() is None
    assert teacher_lines(records, "ood", "imu", "skeleton", K) == []


def test_noise_is_the_seed_spread_or_the_validation_size() -> None:
    sizes = {("ood", s): 120 for s in range(3)}
    # a mean of 0.10 over seeds 0.02, 0.10, 0.18: a seed at chance is within two spreads
    flaky = check_teacher(_baselines({"d": [0.02, 0.10, 0.18], "i": [0.1] * 3}), "ood", "d", "i",
                          K, sizes)  # fmt: skip
    assert flaky.source_std == pytest.approx(0.08) and flaky.noise == pytest.approx(0.08)
    assert flaky.at_chance
    steady = check_teacher(_baselines({"d": [0.09, 0.10, 0.11], "i": [0.1] * 3}), "ood", "d", "i",
                           K, sizes)  # fmt: skip
    assert steady.noise == pytest.approx(math.sqrt(CHANCE * (1 - CHANCE) / 120))
    assert not steady.at_chance  # 0.10 > 0.037 + 2 × 0.017
    # one seed: no spread (0, not NaN), the validation size alone sets the noise
    one = check_teacher(_baselines({"d": [0.06], "i": [0.5]}), "ood", "d", "i", K,
                        {("ood", 0): 120})  # fmt: skip
    assert one.source_std == 0.0 and one.at_chance  # 0.06 < 0.037 + 0.034
    # a larger validation part narrows the noise: the same 0.06 is then above chance
    assert not check_teacher(_baselines({"d": [0.06], "i": [0.5]}), "ood", "d", "i", K,
                             {("ood", 0): 5000}).at_chance  # fmt: skip
    # unknown size, one seed: noise 0, at chance only below 1/K
    bare = check_teacher(_baselines({"d": [0.036], "i": [0.5]}), "ood", "d", "i", K)
    assert bare.noise == 0.0 and bare.at_chance
    assert not check_teacher(_baselines({"d": [0.04], "i": [0.5]}), "ood", "d", "i", K).at_chance


def test_only_baselines_of_the_split_with_a_validation_score_count() -> None:
    records = _baselines({"depth": [0.5, None, math.nan], "imu": [0.6, 0.1, 0.1]})
    records += _baselines({"depth": [0.01], "imu": [0.9]}, split="id")
    records.append({**records[0], "refit": True, "val_f1": 0.0})  # a refit has no val score
    check = check_teacher(records, "ood", "depth", "imu", K)
    assert check.seeds == (0,) and check.source_f1 == 0.5 and check.target_f1 == 0.6
    assert check_teacher(records, "ood", "sound", "imu", K) is None  # no baseline: no verdict
    # a several-source transfer checks each of its sources
    records += _baselines({"audio": [0.2]})
    lines = teacher_lines(records, "ood", "depth+audio", "imu", K)
    assert [line.split(" (")[0] for line in lines] == ["source depth", "source audio"]


def test_the_console_names_a_teacher_once_all_its_baselines_are_in() -> None:
    config = load_config("utd_mhad_paper")  # seeds 0, 1, 2; skeleton ↔ imu
    said: list[str] = []
    watch = TeacherWatch(config, K, said.append)
    val = {"skeleton": [0.02, 0.03, 0.04], "imu": [0.8, 0.8, 0.8]}
    for seed in config.seeds:
        for modality in ("imu", "skeleton"):
            job = Job("ood", seed, modality, "baseline")
            watch.add(job, {"val": {"f1": val[modality][seed]}}, 100)
            assert said == [] or (seed, modality) == (2, "skeleton")  # not before the last
        watch.add(Job("ood", seed, "imu", "plain"), {"val": {"f1": 0.0}}, 100)
    assert said == [
        "warning, ood split: source skeleton (val F1 0.030) is at chance (0.037 for 27 "
        "classes, noise ±0.038): a transfer to imu has nothing to learn from it"
    ]
    # a refit, or the same baseline read again on resume, says nothing new
    watch.add(Job("ood", 2, "skeleton", "baseline", refit=True), {"val": {}}, 100)
    watch.add(Job("ood", 2, "skeleton", "baseline"), {"val": {"f1": 0.04}}, 100)
    assert len(said) == 1


def test_two_seeds_no_p_value_and_the_teacher_in_console_and_report(tmp_path: Path) -> None:
    config = {
        **TINY, "name": "teachers", "methods": ["logit_kd"], "lambdas": [], "seeds": [0, 1],
        "train": {"max_epochs": 1, "batch_size": 32, "progress": False},
    }  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    lines: list[str] = []
    out = tmp_path / "out"
    run_experiment(load_config(tmp_path / "config.yaml"), out, log=lines.append)
    records = json.loads((out / "results.json").read_text())
    sizes = split_val_samples(out)
    assert set(sizes) == {("ood", 0), ("ood", 1)} and all(n > 0 for n in sizes.values())
    # one epoch on 27 classes: the skeleton teacher has learnt nothing yet
    check = check_teacher(records, "ood", "skeleton", "imu", 27, sizes)
    assert check.at_chance, check
    warned = [line for line in lines if line.startswith("warning, ood split: ")]
    assert warned == [f"warning, ood split: {check.message()}"]
    # said once seed 1's baselines are in, before its transfers train
    order = [line.split("] ", 1)[-1] for line in lines]
    said = lines.index(warned[0])
    assert order[said - 1].startswith("ood seed=1 skeleton: baseline")
    assert any("logit_kd" in line for line in order[said:])
    report = (out / "report.md").read_text()
    section = report.split("### target imu ← source skeleton")[1]
    table_end = section.index("\n\n", section.index("| F1-Score |"))
    assert section[table_end:].startswith(f"\n\n**Warning:** {check.message()}.\n")
    # two seeds: no p-value, no CI, and one line says why under every table
    assert "p=" not in report and "t-test p" not in report and "95 % CI" not in report
    assert "Holm" not in report
    assert report.count("2 seeds: too few for a test") >= 3
