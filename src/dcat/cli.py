"""The ``dcat`` command.

    dcat demo [--out DIR]                      the protocol on the embedded UTD-MHAD
    dcat experiment CONFIG [--out DIR] [--set key.path=value ...]
    dcat presets                               list the shipped configurations

Bad input ends with one clear message and exit code 2 (add ``--debug`` for the traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

DEMO_PRESET = "utd_mhad_demo"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcat", description="Train with many sensors, deploy with one (D-CAT)."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def experiment_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", type=Path, help="results folder (default runs/<name>)")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config field, e.g. seeds=[0]",
        )
        p.add_argument("--debug", action="store_true", help="show tracebacks")

    exp = sub.add_parser("experiment", help="run the paper's protocol from a YAML config")
    exp.add_argument("config", help="a YAML file or a preset name (see `dcat presets`)")
    experiment_options(exp)
    demo = sub.add_parser("demo", help=f"the protocol on the embedded UTD-MHAD ({DEMO_PRESET})")
    experiment_options(demo)
    sub.add_parser("presets", help="list the shipped configurations")
    return parser


def _experiment(source: str, out: Path | None, overrides: list[str]) -> int:
    from dcat.config import load_config
    from dcat.experiment import run_experiment

    config = load_config(source, overrides)
    report = run_experiment(config, out or Path("runs") / config.name)
    print()
    print(report.read_text())
    print(f"\nreport written to {report}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dcat`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "presets":
            from dcat.config import list_presets

            print("\n".join(list_presets()))
            return 0
        source = DEMO_PRESET if args.command == "demo" else args.config
        return _experiment(source, args.out, args.overrides)
    except (ValueError, FileNotFoundError) as err:
        if args.debug:
            raise
        print(f"dcat: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dcat: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
