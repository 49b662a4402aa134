"""benchmarks/plot_reproduction.py draws the figures from run folders and leaves out missing ones."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import llm4sbr_adapter

pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install -e '.[examples]')")

ROOT = Path(llm4sbr_adapter.__file__).resolve().parents[1]


def _run(folder: Path, model: str, enhancer: bool, seed: int, hr: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{model}{'_enh' if enhancer else ''}_s{seed}.json"
    (folder / name).write_text(
        json.dumps({"model": model, "enhancer": enhancer, "seed": seed, "test": {"HR@20": hr, "MRR@20": hr / 4}})
    )


def test_figures_from_available_folders(tmp_path):
    spec = importlib.util.spec_from_file_location("plot_reproduction", ROOT / "benchmarks" / "plot_reproduction.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    data = tmp_path / "data"
    for seed in (0, 1):
        _run(data / "results", "srgnn", False, seed, 0.05)
        _run(data / "results", "srgnn", True, seed, 0.06)
        _run(data / "results_llm_f0", "srgnn", True, seed, 0.055)
    assert mod.stat(data / "results", "srgnn", True, "HR@20") == pytest.approx((6.0, 0.0, 2))
    assert mod.stat(data / "results_llm", "srgnn", True, "HR@20") is None  # folder absent
    assert mod.main(["--data", str(data), "--out", str(tmp_path / "img"), "--name", "toy"]) == 0
    written = sorted(p.name for p in (tmp_path / "img").iterdir())
    assert written == ["toy_table2.png", "toy_top_f.png"]  # no perspective folders -> no perspective figure
    assert all((tmp_path / "img" / n).stat().st_size > 1000 for n in written)
