"""List the functions in ``src/`` longer than a limit (default 80 lines), longest first.

    python scripts/long_functions.py [--limit 80] [--root src]

A function's length is its whole definition, decorators and docstring included, from the
first decorator (or ``def``) to its last line, as :mod:`ast` records them. Methods and nested
functions count on their own (a nested function's lines count in its parent too). Prints one
line per function (``lines  path:line  qualified.name``), then the count; exits 0.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """``(qualified name, node)`` of every function under ``tree``, methods and nested ones."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (*FUNCTIONS, ast.ClassDef)):
            name = f"{prefix}{node.name}"
            if isinstance(node, FUNCTIONS):
                yield name, node
            yield from functions(node, f"{name}.")
        else:
            yield from functions(node, prefix)


def length(node: ast.AST) -> int:
    """Lines from the first decorator (or the ``def``) to the last line of the body."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return node.end_lineno - first + 1


def long_functions(root: Path, limit: int) -> list[tuple[int, str, str]]:
    """``(lines, "path:line", name)`` of the functions over ``limit`` lines, longest first."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, node in functions(tree):
            if length(node) > limit:
                found.append((length(node), f"{path}:{node.lineno}", name))
    return sorted(found, key=lambda item: (-item[0], item[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("--root", type=Path, default=Path("src"))
    args = parser.parse_args(argv)
    found = long_functions(args.root, args.limit)
    for lines, where, name in found:
        print(f"{lines:5d}  {where}  {name}")
    print(f"{len(found)} functions over {args.limit} lines under {args.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
