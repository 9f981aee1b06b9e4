"""The ``dcat`` command.

    dcat demo [--out DIR]                      the protocol on the embedded UTD-MHAD
    dcat experiment CONFIG [--out DIR] [--set key.path=value ...] [--retrain-changed]
                    [--workers N [--cluster ADDRESS]] [--verbose]
    dcat presets                               list the shipped configurations
    dcat datasets                              list the data sets a config can name
    dcat encoders                              list the encoders a modality can name
    dcat methods                               list the transfer methods a config can name
    dcat cache list PATH... | clear PATH... [--key KEY ...]   decoded-frame caches
    dcat export RUN_OR_CHECKPOINT [--format onnx|torch-export] [--out DIR]
    dcat export RESULTS --pick TARGET [--seed K] [--split KIND]   the best model by validation
    dcat predict MODEL INPUT [--stride S] [--out FILE]
    dcat predict MODEL... MODALITY=INPUT... [--stride S] [--out FILE]   (fusion)

Bad input (:class:`~dcat.errors.DcatError`, or a file that cannot be read) ends with one clear
message and exit code 2 (add ``--debug`` for the traceback). Any other exception is a bug: its
traceback is shown and the exit code is 1. An experiment stopped by Ctrl-C (SIGINT) or SIGTERM
(a scheduler's stop) prints ``dcat: interrupted by SIGTERM; rerun the same command to resume``
and exits 128 + the signal: 130 or 143, never 0 (:mod:`dcat.io.interrupt`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dcat.errors import DcatError
from dcat.io.interrupt import Interrupted, interruptible

if TYPE_CHECKING:
    from dcat.training.methods.registry import TransferMethod

__all__ = ["main"]

DEMO_PRESET = "utd_mhad_demo"
RESUMABLE = ("experiment", "demo")  # the commands whose interrupted run the same command resumes


def _parser() -> argparse.ArgumentParser:
    """The ``dcat`` parser: ``--debug`` and one sub-command parser each (in ``--help`` order)."""
    parser = argparse.ArgumentParser(
        prog="dcat", description="Train with many sensors, deploy with one (D-CAT)."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _experiment_parsers(sub)
    sub.add_parser("presets", help="list the shipped configurations")
    sub.add_parser("datasets", help="list the registered data sets and their options")
    sub.add_parser("encoders", help="list the registered encoders and their options")
    sub.add_parser("methods", help="list the registered transfer methods and their options")
    _cache_parser(sub)
    _export_parser(sub)
    _predict_parser(sub)
    return parser


def _debug_option(parser: argparse.ArgumentParser) -> None:
    """``--debug`` after the sub-command too; suppressed so that, when not given there, it
    does not overwrite the top-level ``--debug`` given before the sub-command."""
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )


def _experiment_parsers(sub: argparse._SubParsersAction) -> None:
    """``dcat experiment CONFIG`` and ``dcat demo``, which share their options."""
    exp = sub.add_parser("experiment", help="run the paper's protocol from a YAML config")
    exp.add_argument("config", help="a YAML file or a preset name (see `dcat presets`)")
    _experiment_options(exp)
    demo = sub.add_parser("demo", help=f"the protocol on the embedded UTD-MHAD ({DEMO_PRESET})")
    _experiment_options(demo)


def _experiment_options(parser: argparse.ArgumentParser) -> None:
    """The options of a protocol run: results folder, overrides, retraining, Ray, output."""
    parser.add_argument("--out", type=Path, help="results folder (default runs/<name>)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. seeds=[0]",
    )
    parser.add_argument(
        "--retrain-changed",
        action="store_true",
        help="retrain the models in --out that were trained with other settings, and "
        "those that depend on them (default: refuse to run)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="models trained at once, as Ray tasks (default 1: in order, no Ray; needs "
        "the dcat[cluster] extra)",
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="with --workers: join this Ray cluster (default RAY_ADDRESS, else a local "
        "Ray instance)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show Lightning's banners and tips and known library warnings (always in "
        "OUT/experiment.log)",
    )
    _debug_option(parser)


def _export_parser(sub: argparse._SubParsersAction) -> None:
    """``dcat export RUN_OR_CHECKPOINT`` and ``dcat export RESULTS --pick TARGET``."""
    exp = sub.add_parser("export", help="export a run's single-sensor model (ONNX, torch.export)")
    exp.add_argument(
        "run", type=Path, help="a run folder or a checkpoint file (with --pick: a results folder)"
    )
    exp.add_argument(
        "--pick",
        metavar="TARGET",
        help="export the dcat pick for TARGET (best validation F1) of the results folder RUN",
    )
    exp.add_argument("--seed", type=int, help="with --pick: the seed (default: median pick)")
    exp.add_argument(
        "--split", help="with --pick: the split kind; required when the run has several"
    )
    exp.add_argument("--modality", help="the target modality the run must hold (checked)")
    exp.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=["onnx", "torch-export"],
        help="onnx (default) and/or torch-export; repeat for both",
    )
    exp.add_argument("--out", type=Path, help="output folder (default RUN/export)")
    exp.add_argument("--samples", type=Path, help="parity inputs .npy (N, *input_shape)")
    exp.add_argument("--tolerance", type=float, default=1e-4, help="parity tolerance on logits")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    _debug_option(exp)


def _predict_parser(sub: argparse._SubParsersAction) -> None:
    """``dcat predict MODEL INPUT`` and its fusion form ``MODEL... MODALITY=INPUT...``."""
    pred = sub.add_parser(
        "predict",
        help="classify a raw recording with exported models (sliding windows)",
        description="Each argument is an exported model folder or a recording; with several "
        "models, name recordings as MODALITY=PATH. Models without a recording drop out; the "
        "others' probabilities are averaged per window.",
    )
    pred.add_argument("items", nargs="+", metavar="MODEL_OR_INPUT")
    pred.add_argument("--stride", type=float, help="seconds between windows (default: half one)")
    pred.add_argument("--out", type=Path, help="output file .csv or .jsonl (default: stdout)")
    pred.add_argument("--format", choices=["csv", "jsonl"], help="output format")
    pred.add_argument(
        "--rate",
        type=float,
        help="Hz of recordings without time stamps (default: the rate of the recordings the "
        "model was trained from, from its card)",
    )
    pred.add_argument("--time-column", help="name of the CSV time column (seconds)")
    pred.add_argument(
        "--resample",
        action="store_true",
        help="accept a rate far from both the model's recordings and its grid (every "
        "recording is interpolated to the model's grid anyway)",
    )
    _debug_option(pred)


def _export(args: argparse.Namespace) -> int:
    from dcat.deploy.export import export_model

    run, modality = args.run, args.modality
    if args.pick:
        from dcat.experiment.pick import find_pick

        if modality is not None and modality != args.pick:
            raise DcatError(f"--modality {modality!r} contradicts --pick {args.pick!r}")
        record = find_pick(args.run, args.pick, split=args.split, seed=args.seed)
        run, modality = args.run / record["run"], args.pick
        print(
            f"dcat pick for {args.pick} ({record['split']}, seed {record['seed']}): "
            f"{record['method']}, validation F1 {record['val_f1']:.3f} → {run}",
            file=sys.stderr,
        )
    elif args.seed is not None or args.split is not None:
        raise DcatError("--seed and --split choose among picks: use them with --pick TARGET")
    export_model(
        run,
        args.out,
        formats=args.formats or ["onnx"],
        modality=modality,
        samples=args.samples,
        tolerance=args.tolerance,
        overwrite=args.overwrite,
        log=lambda line: print(line, file=sys.stderr),
    )
    return 0


def _is_model(item: str) -> bool:
    path = Path(item)
    return (path.is_dir() and (path / "metadata.json").is_file()) or path.name == "metadata.json"


def _predict(args: argparse.Namespace) -> int:
    from dcat.deploy.predict import (
        DeployedModel,
        PredictError,
        describe,
        format_predictions,
        predict,
        read_recording,
    )
    from dcat.io.atomic import write_atomic

    models = [DeployedModel(item) for item in args.items if _is_model(item)]
    inputs = [item for item in args.items if not _is_model(item)]
    if not models:
        raise PredictError(
            f"no exported model folder among {args.items} (a model folder holds metadata.json)"
        )
    by_modality = {m.card.modality: m for m in models}
    paths: dict[str, str] = {}
    for item in inputs:
        name, sep, rest = item.partition("=")
        if sep and name.isidentifier() and not Path(item).exists():
            modality, path = name, rest
        elif len(models) == 1:
            modality, path = models[0].card.modality, item
        else:
            raise PredictError(
                f"with several models, name each recording as MODALITY=PATH; got {item!r} "
                f"(models: {sorted(by_modality)})"
            )
        if modality not in by_modality:
            raise PredictError(
                f"recording {path!r} is for {modality!r}, but no model has that modality "
                f"(models: {sorted(by_modality)})"
            )
        if modality in paths:
            raise PredictError(f"two recordings for {modality!r}: {paths[modality]} and {path}")
        paths[modality] = path
    if not paths:
        raise PredictError("no recording given")
    recordings = {
        m: read_recording(
            p, by_modality[m].card, rate=args.rate, time_column=args.time_column,
            resample=args.resample,
        )
        for m, p in paths.items()
    }  # fmt: skip
    print(describe(models, recordings), file=sys.stderr)
    predictions = predict(models, recordings, stride_s=args.stride)
    fmt = args.format or (
        "jsonl" if args.out is not None and args.out.suffix in (".jsonl", ".json") else "csv"
    )
    text = format_predictions(predictions, models[0].card.class_names, fmt)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_atomic(args.out, text)
        print(f"{len(predictions)} windows written to {args.out}", file=sys.stderr)
    return 0


def _experiment(source: str, args: argparse.Namespace) -> int:
    from dcat.experiment.config import load_config
    from dcat.experiment.runner import run_experiment

    config = load_config(source, args.overrides)
    report = run_experiment(
        config,
        args.out or Path("runs") / config.name,
        retrain_changed=args.retrain_changed,
        workers=args.workers,
        cluster=args.cluster,
        verbose=args.verbose,
    )
    print()
    print(report.read_text())
    print(f"\nreport written to {report}")
    return 0


def _cache_parser(sub: argparse._SubParsersAction) -> None:
    """``dcat cache list|clear PATH...``: the decoded-frame caches (dcat.data.frame_cache)."""
    cache = sub.add_parser("cache", help="list or clear decoded-frame caches")
    actions = cache.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "list the stores: clips, frames, frame size, MiB on disk, derived from"),
        ("clear", "remove the stores (all, or those --key names) and unfinished builds"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "paths", nargs="+", type=Path, metavar="PATH",
            help="a frame cache folder, or a data root holding .dcat_frames",
        )  # fmt: skip
        action.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
    action.add_argument(
        "--key", dest="keys", action="append", default=[], metavar="KEY",
        help="remove only this store (a key prefix from `dcat cache list`); repeatable",
    )  # fmt: skip


def _cache(args: argparse.Namespace) -> int:
    """List or clear the stores of each PATH's frame cache."""
    from dcat.data.frame_cache import clear_stores, find_cache_dir, list_stores

    folders = [find_cache_dir(path) for path in args.paths]  # all checked before removing
    if args.action == "clear" and args.keys and len(folders) > 1:
        raise DcatError("--key names a store of one cache: give one PATH with it")
    for folder in folders:
        if args.action == "list":
            stores = list_stores(folder)
            total = sum(s.bytes for s in stores) / 2**20
            print(f"{folder}: {len(stores)} stores, {total:.1f} MiB")
            for store in stores:
                print(f"  {store.describe()}")
        else:
            removed, debris = clear_stores(folder, args.keys)
            freed = sum(s.bytes for s in removed) / 2**20
            extra = f" and {len(debris)} unfinished builds" if debris else ""
            print(f"{folder}: removed {len(removed)} stores{extra}, {freed:.1f} MiB")
    return 0


def _datasets() -> int:
    """Print every registered data set: name, summary, whether it needs ``data.root``, options."""
    from dcat.data.registry import list_datasets

    for entry in list_datasets():
        root = "data.root: required" if entry.needs_root else "data.root: not used"
        print(f"{entry.name}: {entry.summary} ({root})")
        for option in entry.options:
            if option.name in entry.root_defaults:
                default = f"<data.root>/{entry.root_defaults[option.name]}"
            elif option.required:
                default = "required"
            else:
                default = repr(option.default)
            print(f"    {option.name}: {option.annotation} = {default}")
    return 0


def _encoders() -> int:
    """Print every registered encoder: name, the first line of its docstring, its options."""
    import inspect

    from dcat.nn.encoders.registry import ENCODERS

    for name, factory in ENCODERS.items():
        summary = (inspect.getdoc(factory) or "").split("\n")[0]
        print(f"{name}: {summary}")
        for option in list(inspect.signature(factory).parameters.values())[1:]:
            if option.kind is option.KEYWORD_ONLY or option.default is not option.empty:
                default = "required" if option.default is option.empty else repr(option.default)
                print(f"    {option.name}: {option.annotation} = {default}")
    return 0


def _methods() -> int:
    """Print every registered transfer method: name, label, reference, options, aliases."""
    from dcat.training.methods.registry import ALIASES, METHODS

    for name, cls in METHODS.items():
        print(f"{name}: {cls.label} ({cls.reference})" if cls.reference else f"{name}: {cls.label}")
        for option, default in cls.options.items():
            print(f"    {option}: {type(default).__name__} = {default!r}")
        print(f"    unlabelled samples: {_unlabelled_use(cls)}")
        for alias, meaning in ALIASES.items():
            if meaning["name"] == name:
                given = ", ".join(f"{k}={v!r}" for k, v in meaning.items() if k != "name")
                print(f"    alias {alias}: {name} with {given}")
    return 0


def _unlabelled_use(cls: type[TransferMethod]) -> str:
    """Whether a method learns from unlabelled samples, in words."""
    if "learns_unlabelled" in vars(cls):  # its options decide
        doc = (cls.learns_unlabelled.__doc__ or "").strip().splitlines()
        return f"by its options ({doc[0] if doc else 'see its docs'})".replace("``", "")
    return "learns from them" if cls.unlabelled else "not used (the labelled samples only)"


LISTINGS = {"datasets": _datasets, "encoders": _encoders, "methods": _methods}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dcat`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "presets":
            from dcat.experiment.config import list_presets

            print("\n".join(list_presets()))
            return 0
        if args.command in LISTINGS:
            return LISTINGS[args.command]()
        if args.command == "cache":
            return _cache(args)
        if args.command == "export":
            return _export(args)
        if args.command == "predict":
            return _predict(args)
        source = DEMO_PRESET if args.command == "demo" else args.config
        with interruptible():  # SIGTERM too: a scheduler's stop must not look like success
            return _experiment(source, args)
    except (DcatError, OSError) as err:  # bad input, missing or unreadable files
        if args.debug:
            raise
        print(f"dcat: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM in an experiment (dcat.io.interrupt)
        interrupt = Interrupted.of(err)
        resume = "; rerun the same command to resume" if args.command in RESUMABLE else ""
        print(f"dcat: {interrupt.message}{resume}", file=sys.stderr)
        return interrupt.exit_code


if __name__ == "__main__":
    sys.exit(main())
