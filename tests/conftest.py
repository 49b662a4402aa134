"""Shared test settings and fixtures: everything runs offline, models come from installed packages.

The tests mirror the package's folders (``tests/offline/``, ``tests/store/``, ``tests/experiments/<job>/``,
``tests/hiphop/`` ...); what several folders use lives here: the real data folder, the one tiny test LLM
(:mod:`tiny_llm`) and the sentence encoder, loaded once per run.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Child interpreters started by tests (CLI runs, SIGKILL workers) must import the package under test,
# not whichever copy pip last installed (an editable install may point at another checkout).
# The tests folder is there too, so a child can load the tiny test LLM as ``--llm py:tiny_llm:make``.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])
TESTS_DIR = str(Path(__file__).resolve().parent)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, TESTS_DIR, os.environ.get("PYTHONPATH")) if p)

SHARED_DATA = Path(os.environ.get("LLM4SBR_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets beside the checkout (``../shared/data``); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set LLM4SBR_SHARED_DATA to point elsewhere)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def encoder():
    """The default sentence encoder (all-MiniLM-L6-v2), loaded once for every test that embeds text."""
    # imported here, not at the top: loading this conftest must not import stage one (tests check what loads)
    from llm4sbr_adapter.offline.encode import TextEncoder

    return TextEncoder()


@pytest.fixture()
def title_llm():
    """A fresh tiny test LLM that answers with each prompt's last listed title (see :mod:`tiny_llm`)."""
    from tiny_llm import TitleLLM  # here, not at the top, for the same reason (it is an offline backend)

    return TitleLLM()
