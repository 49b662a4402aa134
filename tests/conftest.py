"""Shared test settings: everything runs offline, models come from installed packages."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Child interpreters started by tests (CLI runs, SIGKILL workers) must import the package under test,
# not whichever copy pip last installed (an editable install may point at another checkout).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)

SHARED_DATA = Path(os.environ.get("LLM4SBR_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets beside the checkout (``../shared/data``); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set LLM4SBR_SHARED_DATA to point elsewhere)")
    return SHARED_DATA
