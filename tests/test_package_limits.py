"""Size limits of the package: no module over 600 lines, no function over 60 (docstring included).

The whole package, ``experiments/`` included.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llm4sbr_adapter"
EXCLUDED: tuple[str, ...] = ()
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 600, 60


def _modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if not set(p.relative_to(PACKAGE).parts) & set(EXCLUDED)]


def test_the_scan_sees_the_package():
    names = {p.relative_to(PACKAGE).as_posix() for p in _modules()}
    assert {"enhancer.py", "store/reader.py", "offline/pipeline.py", "experiments/training/loop.py"} <= names


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


# Writes allowed outside atomic_files.py, each atomic its own way: the dequantised-GGUF folder's stamp (written
# inside a temporary folder that is then renamed into place), the ranks file (np.savez_compressed into the
# temporary path of atomic_files.atomic_path) and the training checkpoint (torch.save, likewise). The SQLite
# answer cache commits by transactions.
WRITE_EXCEPTIONS = {
    "offline/llm/transformers_backend.py": 1,
    "experiments/evaluation/ranks_file.py": 1,
    "experiments/training/epoch_checkpoint.py": 1,
}


def test_every_file_the_package_writes_goes_through_atomic_files():
    """No direct ``write_text`` / ``write_bytes`` / ``open(..., "w" | "a" | "x")`` / ``np.save*`` / ``torch.save``
    outside atomic_files.py (the whole package, experiments/ included)."""
    direct = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name == "atomic_files.py":
            continue
        count = 0
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _writes(node):
                count += 1
        if count > WRITE_EXCEPTIONS.get(name, 0):
            direct[name] = count
    assert not direct, f"direct file writes (use llm4sbr_adapter.atomic_files): {direct}"


def _writes(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name in ("write_text", "write_bytes", "savez", "savez_compressed") or (
        name == "save" and isinstance(func, ast.Attribute) and getattr(func.value, "id", "") in ("np", "torch")
    ):
        return True
    if name == "open" and isinstance(func, ast.Name):
        modes = [a for a in call.args[1:2]] + [k.value for k in call.keywords if k.arg == "mode"]
        return any(
            isinstance(m, ast.Constant) and isinstance(m.value, str) and set(m.value) & set("wax") for m in modes
        )
    return False
