"""Size limits of the package: no module over 600 lines, no function over 60 (docstring included).

``experiments/`` is left out for now: it is being regrouped by job on another branch and is held to the
same limits once that lands.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llm4sbr_adapter"
EXCLUDED = ("experiments",)
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 600, 60


def _modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if not set(p.relative_to(PACKAGE).parts) & set(EXCLUDED)]


def test_the_scan_sees_the_package():
    names = {p.relative_to(PACKAGE).as_posix() for p in _modules()}
    assert {"enhancer.py", "store/reader.py", "offline/pipeline.py"} <= names
    assert not any(name.startswith("experiments/") for name in names)


def test_no_module_over_600_lines():
    long = {p.relative_to(PACKAGE).as_posix(): n for p in _modules() if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_60_lines():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
