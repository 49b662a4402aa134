"""The core of benchmarks/fault_drill.py with two kills (slow: it starts five builds with the real text encoder)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import llm4sbr_adapter

ROOT = Path(llm4sbr_adapter.__file__).resolve().parents[1]


def _fault_drill():
    spec = importlib.util.spec_from_file_location("fault_drill", ROOT / "benchmarks" / "fault_drill.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_drill"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_killed_and_resumed_build_equals_an_uninterrupted_one(tmp_path):
    res = _fault_drill().run_drill(tmp_path, kills=2, seed=0, sessions=12, log=lambda msg: None)
    assert res.kills == 2
    assert res.missing_prompts == 0
    assert res.most_reasked_by_one_restart <= res.batch_size  # a kill loses at most the batch in flight
    assert res.extra_requests <= res.kills * res.batch_size
    assert res.comparison["tensor_identical"], res.comparison
    assert res.comparison["byte_identical_but_created_at"], res.comparison
    assert res.temp_files == []
    assert res.ok
