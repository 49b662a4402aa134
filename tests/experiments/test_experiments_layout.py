"""The experiments harness grouped by job: the short ``python -m`` names forward, and no job imports one above it."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import llm4sbr_adapter.experiments as experiments

ROOT = Path(experiments.__file__).parent
FORWARDED = {
    "prepare_data": "data.prepare_data",
    "text_mean_store": "data.text_mean_store",
    "train": "training.train",
    "hiphop_srgnn": "training.hiphop_srgnn",
    "summarize": "evaluation.summarize",
    "table2": "evaluation.table2",
    "seen_targets": "evaluation.seen_targets",
    "intent_quality": "evaluation.intent_quality",
    "split_sample": "data.split_sample",
    "shuffle_store": "data.shuffle_store",
}
# A job may import the jobs listed for it (and itself), never one that is not.
ALLOWED = {
    "data": set(),
    "models": {"data"},
    "evaluation": {"data"},
    "training": {"data", "models", "evaluation"},
    "baselines": {"data", "evaluation", "training"},
}


@pytest.mark.parametrize("short", sorted(FORWARDED))
def test_short_name_runs_the_commands_main(short):
    old = importlib.import_module(f"llm4sbr_adapter.experiments.{short}")
    new = importlib.import_module(f"llm4sbr_adapter.experiments.{FORWARDED[short]}")
    assert old.main is new.main


def test_short_name_runs_as_a_module():
    out = subprocess.run(
        [sys.executable, "-m", "llm4sbr_adapter.experiments.summarize", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--runs" in out.stdout


def _imported_jobs(path: Path, job: str) -> set[str]:
    """The other jobs a module of ``job`` imports (relative or absolute)."""
    jobs = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            depth = len(path.relative_to(ROOT / job).parts)  # 1 for job/x.py, 2 for job/sub/x.py
            if node.level <= depth:
                continue  # inside the same job
            target = (node.module or "").split(".")[0]
        elif (node.module or "").startswith("llm4sbr_adapter.experiments."):
            target = node.module.split(".")[2]
        else:
            continue
        if target in ALLOWED and target != job:
            jobs.add(target)
    return jobs


@pytest.mark.parametrize("job", sorted(ALLOWED))
def test_no_job_imports_one_above_it(job):
    for path in sorted((ROOT / job).rglob("*.py")):
        assert _imported_jobs(path, job) <= ALLOWED[job], path
