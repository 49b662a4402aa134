"""The README's Python code runs as pasted, in the folder where the demo wrote its store."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from llm4sbr_adapter import IntentEnhancer, StoreMetadata, write_store
from llm4sbr_adapter.build_store import DEMO_OUTPUT, demo_paths

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def _demo_like_store(folder: Path) -> Path:
    """A store shaped like the demo's (its session ids, two perspectives, 384 dimensions), without the LLM."""
    sessions = demo_paths()[0].read_text(encoding="utf-8").splitlines()
    ids = [line.split("\t")[0] for line in sessions if line and not line.startswith("session_id")]
    rng = np.random.default_rng(0)
    vecs = {p: rng.normal(size=(len(ids), 384)).astype(np.float32) for p in ("long", "short")}
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=384, text_encoder="sentence-transformers/x")
    return write_store(folder / DEMO_OUTPUT, ids, vecs, meta)


def test_readme_python_blocks_run_as_pasted(tmp_path, monkeypatch):
    blocks = python_blocks(README)
    assert blocks, "the README has no python block"
    _demo_like_store(tmp_path)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    saved = IntentEnhancer.from_pretrained(tmp_path / "checkpoints" / "enhancer")
    assert saved.config.hidden_size == 100
