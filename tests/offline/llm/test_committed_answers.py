"""The committed LLM answers rebuild issue 22's stores without an LLM, array for array.

benchmarks/answers/ holds the answers of the default model (llama.cpp) to the screening prompts of
ML-100K (authors' protocol, seed 0, the 300-row sample of validation) and to every prompt of the chosen
variant's full build, with the sha256 of every array of the stores those answers built
(benchmarks/store_digests.py). Here the data is prepared afresh from
../shared/data, the stores are rebuilt with ``--llm replay:`` and their arrays must hash the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm4sbr_adapter.build_store import main as build_main
from llm4sbr_adapter.experiments.data.prepare_data import main as prepare_main
from llm4sbr_adapter.experiments.data.split_sample import main as sample_main
from llm4sbr_adapter.store.digest import array_digests

ANSWERS = Path(__file__).resolve().parents[3] / "benchmarks" / "answers"
VARIANTS = {
    "a": ["--perspectives", "long,short"],
    "b": ["--perspectives", "long_unseen,short_unseen"],
    "d": ["--perspectives", "long_candidates,short_candidates"],
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_replay_rebuilds_the_screening_stores(variant, shared_data, tmp_path):
    expected = json.loads((ANSWERS / "ml100k-paper-screen.digests.json").read_text(encoding="utf-8"))
    data = tmp_path / "seed0"
    src = str(shared_data / "ml-100k")
    assert prepare_main(["movielens", "--protocol", "paper", "--seed", "0", "--src", src, "--out", str(data)]) == 0
    assert sample_main(["--data", str(data), "--rows", "300", "--name", "valid300"]) == 0
    out = tmp_path / f"{variant}.safetensors"
    flags = VARIANTS[variant] + ["--candidate-sessions", str(data / "train.txt")]
    argv = ["--sessions", str(data / "valid300.txt"), "--items", str(data / "items.tsv"), "--output", str(out)]
    # one thread, as the stores were built: other thread counts sum the similarities in another order and
    # change the last bit of a few softmax weights
    argv += ["--llm", f"replay:{ANSWERS / 'ml100k-paper-screen.jsonl.gz'}", "--top-f", "5", "--threads", "1", *flags]
    assert build_main(argv) == 0
    assert array_digests(out) == expected[f"{variant}.safetensors"]


@pytest.mark.slow
@pytest.mark.parametrize("split", ["valid", "test"])
def test_replay_rebuilds_the_full_build_stores(split, shared_data, tmp_path):
    """The chosen variant's answers (every split, seeds 0-2) rebuild seed 0's stores of issue 22's Table 2."""
    expected = json.loads((ANSWERS / "ml100k-paper-bx.digests.json").read_text(encoding="utf-8"))
    data = tmp_path / "seed0"
    src = str(shared_data / "ml-100k")
    assert prepare_main(["movielens", "--protocol", "paper", "--seed", "0", "--src", src, "--out", str(data)]) == 0
    out = tmp_path / f"llm_bx_f5_{split}.safetensors"
    argv = ["--sessions", str(data / f"{split}.txt"), "--items", str(data / "items.tsv"), "--output", str(out)]
    argv += ["--llm", f"replay:{ANSWERS / 'ml100k-paper-bx.jsonl.gz'}", "--top-f", "5", "--threads", "1"]
    argv += ["--perspectives", "long_unseen,short_unseen", "--exclude-session-items", "--no-item-ids"]
    assert build_main(argv) == 0
    assert array_digests(out) == expected[out.name]
