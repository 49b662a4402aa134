"""A missing optional dependency is one line naming the extra to install (scipy: experiments/test_baselines.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llm4sbr_adapter.optional_deps import MissingExtraError, install_hint, missing_extra

REPO = Path(__file__).resolve().parents[1]
HINT = 'pip install -e ".[examples]"'


def test_the_hint_names_the_extra_of_each_known_package() -> None:
    assert install_hint("scipy") == HINT and install_hint("matplotlib") == HINT
    assert install_hint("leftpad") == "pip install leftpad"
    err = missing_extra("matplotlib", "the plots")
    assert isinstance(err, ImportError) and isinstance(err, MissingExtraError)
    assert str(err) == f"matplotlib is not installed (needed for the plots): {HINT}"


@pytest.mark.parametrize(
    ("script", "args"),
    [("plot_table2.py", ["--json", "t.json", "--out", "p.png"]), ("plot_reproduction.py", ["--data", "."])],
)
def test_a_plot_without_matplotlib_says_which_extra_to_install(tmp_path: Path, script: str, args: list[str]) -> None:
    # sys.modules["matplotlib"] = None makes `import matplotlib` fail, as on an install without the extra
    code = (
        "import runpy, sys; sys.modules['matplotlib'] = None; "
        f"sys.argv = [{script!r}, *{args!r}]; "
        f"runpy.run_path({str(REPO / 'benchmarks' / script)!r}, run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: matplotlib is not installed") and lines[0].endswith(HINT)
