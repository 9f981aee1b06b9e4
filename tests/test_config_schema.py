"""The configuration schema: pydantic-validated, one-line errors, no training framework imported.

The precision, accelerator and strategy names are written out in :mod:`dcat.training.config`
so that reading a config never imports Lightning; the tests below hold them to Lightning's own
lists, so an upgrade that adds or drops a name fails here rather than inside ``fit``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from dcat.errors import DcatError
from dcat.experiment.config import ExperimentConfig, load_config
from dcat.experiment.plan import method_variants, plan_jobs
from dcat.training.config import Accelerator, Precision, Strategy, TrainConfig

PRESET = "utd_mhad_paper"  # both directions, both splits


def _flat_literals(tp: object) -> set[object]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Literal:
        return set(args)
    return set().union(*(_flat_literals(a) for a in args))


def test_precision_names_are_lightnings() -> None:
    connector = pytest.importorskip("lightning.fabric.connector")
    assert set(typing.get_args(Precision)) == _flat_literals(connector._PRECISION_INPUT)


def test_accelerator_and_strategy_names_are_lightnings() -> None:
    pytest.importorskip("lightning")
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    accelerators = set(AcceleratorRegistry.available_accelerators())
    assert set(typing.get_args(Accelerator)) == accelerators | {"gpu", "auto"}
    assert set(typing.get_args(Strategy)) == set(StrategyRegistry.available_strategies()) | {"auto"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.precision=16mixed", r"train: TrainConfig\.precision must be one of \[.*\], got "
                                    r"'16mixed'; did you mean '16-mixed'\?"),
        ("train.accelerator=gpus", r"train: TrainConfig\.accelerator must be one of "
                                   r"\['cpu', 'gpu', 'cuda', 'mps', 'tpu', 'auto'\], got 'gpus'; "
                                   r"did you mean 'gpu'\?"),
        ("modalities.imu.train.strategy=dpp", r"modalities\.imu\.train: TrainConfig\.strategy "
                                              r"must be one of .*did you mean 'ddp'\?"),
        ("train.extra={}", r"train: unknown training option\(s\) \['extra'\]; known: "
                           r"\['accelerator', .*"),
        ("train.max_epochs=0", r"train: TrainConfig\.max_epochs is out of range: 0"),
        ("train.lr=fast", r"train: TrainConfig\.lr must be float, got 'fast'"),
    ],
)  # fmt: skip
def test_training_options_are_checked_when_the_config_is_read(override: str, message: str) -> None:
    with pytest.raises(DcatError, match=message) as caught:
        load_config(PRESET, [override])
    assert "\n" not in str(caught.value)
    assert "validation error" not in str(caught.value)  # pydantic's own text never leaks


def test_train_config_rejects_bad_names_by_itself() -> None:
    assert TrainConfig(precision="bf16-mixed", strategy="ddp", accelerator="auto").devices == 1
    with pytest.raises(DcatError, match=r"TrainConfig\.precision must be one of"):
        TrainConfig(precision="half")
    with pytest.raises(DcatError, match=r"unknown training option\(s\) \['extra'\]"):
        TrainConfig.from_dict({"extra": {}})
    assert "extra" not in TrainConfig.__dataclass_fields__


def test_a_method_mapping_sets_options_that_reach_the_job_and_the_task() -> None:
    torch = pytest.importorskip("torch")
    from dcat.experiment import build
    from dcat.nn.encoders import create_encoder
    from dcat.nn.model import ModalityNet

    config = load_config(
        PRESET,
        ["methods=[{name: contrastive, temperature: 0.2, projection_dim: 16}, "
         "{name: dcat, mcma: false}, logit_kd]", "temperature=2.5"],
    )  # fmt: skip
    jobs = [j for j in plan_jobs(config) if j.parts]
    by_tag = {j.method: dict(j.options) for j in jobs}
    assert by_tag["contrastive_projection_dim16_temperature0.2"] == {
        "temperature": 0.2,
        "projection_dim": 16,
    }
    # `dcat` with `mcma: false` is the old `dcat_no_mcma`, under its old name
    assert by_tag["dcat_no_mcma"]["mcma"] == "none"
    # the top-level temperature is logit KD's when its entry sets none
    assert by_tag["logit_kd"] == {"temperature": 2.5}

    job = next(j for j in jobs if j.base == "contrastive")

    def net(channels: int) -> ModalityNet:
        return ModalityNet(create_encoder("imu", channels), num_classes=27, d_out=8)

    task = build.make_task(job, net(6), {job.source: net(60)})
    method = task.methods[job.source]
    assert method.config["temperature"] == 0.2 and method.config["projection_dim"] == 16
    assert isinstance(task(_batch(torch, job))["loss"], torch.Tensor)


def _batch(torch, job) -> dict:
    return {
        "inputs": {job.target: torch.randn(4, 6, 50), job.source: torch.randn(4, 60, 30)},
        "label": torch.tensor([0, 1, 2, 3]),
    }


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        ("[mixup]", r"methods: unknown \['mixup'\]; choose from \['dcat', 'dcat_no_mcma', "
                    r"'logit_kd', 'feature', 'contrastive', 'dkd', 'rkd', 'sp', 'virtual', "
                    r"'pseudo_label'\]"),
        ("[{name: contrastive, temprature: 0.2}]",
         r"methods\[0\]: unknown option\(s\) \['temprature'\] for method 'contrastive'; known: "
         r"\['projection_dim', 'temperature'\]; did you mean 'temperature'\?"),
        ("[{name: contrastive, temperature: -1}]",
         r"methods\[0\]: temperature must be positive, got -1\.0"),
        ("[{name: contrastive, temperature: abc}]",
         r"methods\[0\]: option 'temperature' of method 'contrastive' must be float, got 'abc'"),
        ("[{temperature: 1}]", r"methods\[0\]: a method is a name or a mapping with a 'name' key"),
        ("[3]", r"methods\[0\]: a method is a name or a mapping with a 'name' key, got 3"),
        ("[dcat, {name: dcat}]", r"methods\[1\]: 'dcat' is listed twice"),
    ],
)  # fmt: skip
def test_bad_method_entries_are_one_line_errors(methods: str, message: str) -> None:
    with pytest.raises(DcatError, match=message) as caught:
        load_config(PRESET, [f"methods={methods}"])
    assert "\n" not in str(caught.value)


def test_a_bad_training_option_leaves_no_output_folder(tmp_path: Path) -> None:
    from dcat.cli import main

    out = tmp_path / "out"
    code = main(["experiment", PRESET, "--out", str(out), "--set", "train.precision=16mixed"])
    assert code == 2
    assert not out.exists()


def test_reading_a_config_imports_no_training_framework() -> None:
    script = (
        "import sys\n"
        "from dcat.experiment.config import load_config\n"
        "from dcat.experiment.plan import method_variants\n"
        "from dcat.experiment.recipe import train_options\n"
        f"config = load_config({PRESET!r}, ['train.precision=bf16-mixed'])\n"
        "method_variants(config)\n"
        "train_options(config, 'imu', 3)\n"
        "bad = [m for m in ('lightning', 'pytorch_lightning') if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "[]"


def test_the_schema_is_strict_about_types_and_keys() -> None:
    with pytest.raises(
        DcatError,
        match=r"config: unknown key\(s\) \['seedz'\] under .*did you "
        r"mean 'seeds'\?|config: unknown key\(s\) \['seedz'\]",
    ):
        ExperimentConfig(name="x", data={"dataset": "utd_mhad_embedded"},
                         modalities={"imu": {"encoder": "imu"}}, splits=[{"kind": "id"}],
                         seedz=[1])  # fmt: skip
    with pytest.raises(DcatError, match=r"splits\[0\]\.kind: must be one of \['id', 'ood'\]"):
        load_config(PRESET, ["splits=[{kind: iid}]"])
    with pytest.raises(DcatError, match=r"seeds\[1\]: must be int, got '2'"):
        load_config(PRESET, ["seeds=[1, '2']"])


def test_a_method_variant_with_options_is_labelled_in_the_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from dcat.experiment.report import write_report

    config = load_config(PRESET, ["methods=[{name: contrastive, temperature: 0.2}]", "seeds=[0]"])
    (variant,) = method_variants(config)
    assert variant.label == "Contrastive (temperature=0.2)"

    class Data:
        name, num_classes, modalities, class_names = "toy", 3, ["imu", "skeleton"], ["a", "b", "c"]

        def __len__(self) -> int:
            return 30

    records = []
    for method, score in (("baseline", 0.5), (variant.tag, 0.7)):
        for split in dict.fromkeys(s.kind for s in config.splits):
            run = tmp_path / "runs" / split / method
            run.mkdir(parents=True)
            matrix = [[5, 1, 0], [1, 4, 1], [0, 2, 6]]
            (run / "metrics.json").write_text(json.dumps({"test": {"confusion_matrix": matrix}}))
            records.append({
                "split": split, "seed": 0, "target": "imu", "source": "skeleton",
                "method": method, "lambda": config.weight, "run": f"runs/{split}/{method}",
                "accuracy": score, "recall": score, "precision": score, "f1": score,
            })  # fmt: skip
    report = write_report(tmp_path, records, config, Data()).read_text()
    assert "Contrastive (temperature=0.2)" in report
    assert (tmp_path / "f1_id.png").stat().st_size > 0


def test_attention_placement_and_aux_head_reach_the_network() -> None:
    pytest.importorskip("torch")
    from dcat.experiment.runner import build_net, load_dataset

    config = load_config(PRESET, ["modalities.imu.attention=side", "modalities.imu.aux_head=true"])
    data = load_dataset(config)
    net = build_net(config, data, "imu", 0)
    assert net.placement == "side" and net.aux_head is not None
    assert build_net(config, data, "skeleton", 0).placement == "serial"
    with pytest.raises(
        DcatError,
        match=r"modalities\.imu\.attention: must be one of "
        r"\['serial', 'residual', 'side', 'none'\], got 'parallel'",
    ):
        load_config(PRESET, ["modalities.imu.attention=parallel"])


def test_centering_is_checked_before_anything_is_written() -> None:
    from dcat.experiment.build import normalization_kinds
    from dcat.experiment.runner import load_dataset

    config = load_config(PRESET, ["data.centering={skeleton: mean}"])
    data = load_dataset(config)
    normalization_kinds(config, data)  # skeleton: 60 channels, 20 joints of x, y, z
    assert config.data.centering == {"skeleton": "mean"}
    with pytest.raises(DcatError, match=r"data\.centering\.skeleton: String should match"):
        load_config(PRESET, ["data.centering={skeleton: median}"])
    for override, message in [
        ("data.centering={depth: mean}", r"data\.centering\.depth: modality 'depth' is not in"),
        ("data.centering={skeleton: 'root:20'}", r"root point 20 of 20 does not exist"),
        ("data.normalization={imu: zscore, skeleton: none}", r"normalisation, which is 'none'"),
    ]:
        bad = load_config(PRESET, ["data.centering={skeleton: mean}", override])
        with pytest.raises(DcatError, match=message):
            normalization_kinds(bad, data)


def test_a_method_registered_after_import_is_a_valid_method() -> None:
    import dcat.training.methods.registry as registry

    with registry.METHODS.scoped():  # left as shipped after the test
        _register_sp_again_and_plan()


def _register_sp_again_and_plan() -> None:
    from dcat.training.methods import register_method
    from dcat.training.methods.similarity import SimilarityPreserving

    with pytest.raises(DcatError, match=r"methods: unknown \['sp_again'\]; choose from \["):
        load_config(PRESET, ["methods=[sp_again]"])
    register_method("sp_again")(type("SPAgain", (SimilarityPreserving,), {}))
    config = load_config(PRESET, ["methods=[sp_again, dcat+sp_again]"])
    assert {job.method for job in plan_jobs(config)} == {"baseline", "plain", *config.methods}
