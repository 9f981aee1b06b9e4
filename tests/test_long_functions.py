"""scripts/long_functions.py counts a function's whole definition, methods and nested ones."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location(
    "long_functions", ROOT / "scripts" / "long_functions.py"
)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


def test_functions_over_the_limit_are_listed_longest_first(tmp_path: Path, capsys) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(6))
    (tmp_path / "m.py").write_text(
        "def short():\n    return 1\n\n\n"
        f"@decorator\ndef long():\n{body}\n\n\n"  # 8 lines with its decorator
        f"class C:\n    def method(self):\n{body.replace('    ', '        ')}\n"  # 7 lines
    )
    found = script.long_functions(tmp_path, limit=6)
    assert [(n, name) for n, _, name in found] == [(8, "long"), (7, "C.method")]
    assert found[0][1] == f"{tmp_path / 'm.py'}:6"
    assert script.main(["--root", str(tmp_path), "--limit", "7"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"1 functions over 7 lines under {tmp_path}" and "long" in out[0]
