"""Digest what the library computes, so that a refactor can be shown to change no number.

Builds several small intent stores on invented data with a deterministic fake LLM (answers derived from
the prompt text) and the real all-MiniLM-L6-v2 encoder, in several setting mixes (top_f 0/1/3/5, float16
and float32, custom perspectives, skip_item, an HNSW index, a sharded build merged), runs the enhancer on
a fixed batch, trains SR-GNN and STAMP for two epochs with and without the enhancer and HIPHOP's SR-GNN
(intents, neighbours, contrastive) through the harness's Python API, and runs the semantic item
embedding. It prints (or writes, with ``--out``) one JSON object mapping each output to the sha256 of
its bytes: every store tensor, every store's metadata (``created_at`` left out), every metric and
rank array of the runs (timings, memory and paths left out).

Run it on the commit before a change and after it, then compare the two files::

    PYTHONPATH=$PWD python benchmarks/compare_outputs.py --out /tmp/before.json   # on the old commit
    PYTHONPATH=$PWD python benchmarks/compare_outputs.py --out /tmp/after.json    # on the new one
    PYTHONPATH=$PWD python benchmarks/compare_outputs.py --compare /tmp/before.json /tmp/after.json

It takes about a minute on two CPU cores and needs no network (the encoder comes from the local cache).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import random
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402 - after the offline switches, which the model libraries read on import
import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

from llm4sbr_adapter import IntentEnhancer, IntentEnhancerConfig, IntentStore  # noqa: E402
from llm4sbr_adapter.hiphop import SemanticItemEmbedding  # noqa: E402
from llm4sbr_adapter.offline import build_intent_store  # noqa: E402
from llm4sbr_adapter.offline.encode import TextEncoder  # noqa: E402
from llm4sbr_adapter.offline.llm.base import LLMBackend  # noqa: E402
from llm4sbr_adapter.offline.prompts import Perspective  # noqa: E402
from llm4sbr_adapter.store import merge_stores  # noqa: E402

try:  # the training commands' homes since issue 26; before it, experiments.train and experiments.hiphop_srgnn
    from llm4sbr_adapter.experiments.training import hiphop_srgnn, train  # noqa: E402
except ImportError:
    from llm4sbr_adapter.experiments import hiphop_srgnn, train  # noqa: E402
try:  # the enhancer's data side after issue 26; before it, the enhancer took the store itself
    from llm4sbr_adapter.intent_source import IntentSource  # noqa: E402
except ImportError:
    IntentSource = None

NUM_ITEMS = 30
LINE = re.compile(r"^\d+\. (.*)$")
# Keys of a run's result that vary between identical runs (clocks, memory, versions, paths).
VOLATILE = re.compile(r"second|rss|_mb$|^torch$|^python$|^data$|^ranks_file$|^config$|^threads$|^stores$")
# Keys of a run's "config" (its settings) that are paths of this temporary folder.
PATH_SETTINGS = ("data", "out", "store_train", "store_valid", "store_test", "encoder_cache")


def kept_results(result: dict[str, Any]) -> dict[str, Any]:
    """A run's results without what varies between identical runs; its settings without their paths."""
    kept = {k: v for k, v in result.items() if not VOLATILE.search(k)}
    kept["log"] = [{k: v for k, v in epoch.items() if not VOLATILE.search(k)} for epoch in result["log"]]
    kept["settings"] = {k: v for k, v in result["config"].items() if k not in PATH_SETTINGS}
    return kept


def digest(value: Any) -> str:
    """sha256 of an array's dtype, shape and bytes, or of a JSON value (sorted keys)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        h = hashlib.sha256(f"{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
        return h.hexdigest()
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def make_llm() -> Any:
    """A deterministic backend: the answer names the first and last listed titles and the item count."""

    class EchoLLM(LLMBackend):
        model_id = "compare-outputs-echo-v1"

        def generate(self, prompts, config):
            out = []
            for prompt in prompts:
                titles = [m.group(1) for m in map(LINE.match, prompt.splitlines()) if m]
                out.append(f'"{titles[0]} and {titles[-1]}" ({len(titles)})' if titles else "")
            return out

    return EchoLLM()


def write_data(folder: Path) -> None:
    """Three SR-GNN pickles of short sessions over NUM_ITEMS items, and a catalogue with a title each."""
    folder.mkdir(parents=True, exist_ok=True)
    words = ["red", "blue", "steel", "wooden", "soft", "tiny", "large", "smart", "quiet", "fast"]
    kinds = ["lamp", "chair", "kettle", "phone", "shoe", "desk"]
    with open(folder / "items.tsv", "w") as handle:
        handle.write("item_id\ttitle\n")
        for i in range(1, NUM_ITEMS + 1):
            handle.write(f"{i}\t{words[i % len(words)]} {kinds[i % len(kinds)]} model {i}\n")
    for seed, (split, rows) in enumerate((("train", 60), ("valid", 20), ("test", 25))):
        rng = random.Random(seed)
        seqs = [[rng.randint(1, NUM_ITEMS) for _ in range(rng.randint(1, 6))] for _ in range(rows)]
        targets = [rng.randint(1, NUM_ITEMS) for _ in range(rows)]
        with open(folder / f"{split}.txt", "wb") as handle:
            pickle.dump((seqs, targets), handle)


def store_digests(path: Path) -> dict[str, str]:
    """Every tensor of a store, and its metadata without ``created_at``."""
    out = {f"tensor {name}": digest(arr) for name, arr in sorted(load_file(str(path)).items())}
    with safe_open(str(path), "np") as handle:
        meta = json.loads(handle.metadata()["llm4sbr"])
    meta.pop("created_at", None)
    out["metadata"] = digest(meta)
    return out


def build_stores(root: Path, data: Path, encoder: Any) -> dict[str, Any]:
    """The store of each setting mix; returns ``{mix: {output: digest}}`` and leaves the stores in ``root``."""
    custom = [
        Perspective("whole", "overall"),
        Perspective("recent", "latest", last_n=2),
        Perspective("third", "main", template="Items seen: {items}\nWhat {qualifier} need do they share?"),
    ]
    partial = data / "partial_items.tsv"
    lines = (data / "items.tsv").read_text().splitlines()
    partial.write_text("\n".join(ln for ln in lines if not ln.startswith(("3\t", "7\t"))) + "\n")
    mixes: dict[str, tuple[Path, Path, dict[str, Any]]] = {
        "top5_f16": (data / "train.txt", data / "items.tsv", {"top_f": 5}),
        "top0_f32": (data / "train.txt", data / "items.tsv", {"top_f": 0, "dtype": "float32"}),
        "top1_custom": (data / "valid.txt", data / "items.tsv", {"top_f": 1, "perspectives": custom}),
        "top3_skip_f32": (
            data / "train.txt",
            partial,
            {"top_f": 3, "dtype": "float32", "on_missing_title": "skip_item"},
        ),
        "top3_hnsw": (data / "test.txt", data / "items.tsv", {"top_f": 3, "index": "hnsw"}),
    }
    common = {"llm": make_llm(), "encoder": encoder, "progress": False}
    out: dict[str, Any] = {}
    for name, (sessions, items, settings) in mixes.items():
        target = root / name / "store.safetensors"
        build_intent_store(sessions, items, target, **common, **settings)
        out[name] = store_digests(target)
    shards = []
    for k in range(2):
        target = root / "shards" / f"part{k}.safetensors"
        build_intent_store(data / "train.txt", data / "items.tsv", target, shard=(k, 2), **common)
        shards.append(target)
    merged = merge_stores(shards, root / "shards" / "merged.safetensors")
    out["merged_shards"] = store_digests(merged)
    for split in ("valid", "test"):  # the training runs need one store per split, built like the train store
        target = root / f"split_{split}" / "store.safetensors"
        build_intent_store(data / f"{split}.txt", data / "items.tsv", target, **common)
        out[f"split_{split}"] = store_digests(target)
    return out


def enhancer_digests(store_path: Path) -> dict[str, str]:
    """One forward and backward of the enhancer on a fixed batch, per fusion and missing-id policy."""
    store = IntentStore.open(store_path)
    out: dict[str, str] = {}
    for fusion in ("concat", "gate"):
        for missing in ("raise", "zeros", "learned"):
            torch.manual_seed(0)
            config = IntentEnhancerConfig(
                hidden_size=8, text_dim=store.text_dim, fusion=fusion, missing=missing, dropout=0.1
            )
            enhancer = _bound_enhancer(config, store)
            ids = [0, 5, 9, 2] if missing == "raise" else [0, 5, 999, 2]
            h_local, h_global = torch.randn(4, 8), torch.randn(4, 8)
            result = enhancer(h_local, h_global, session_ids=ids)
            (result.session.sum() + result.aux_loss).backward()
            key = f"{fusion}/{missing}"
            out[f"{key} session"] = digest(result.session)
            out[f"{key} aux_loss"] = digest(result.aux_loss)
            out[f"{key} grads"] = digest([digest(p.grad) for p in enhancer.parameters() if p.grad is not None])
            saved = enhancer.config.to_dict()
            for name in ("text_encoder", "catalogue_sha256"):  # filled in from the store before issue 26 only
                saved.pop(name, None)
            out[f"{key} config"] = digest(saved)
    return out


def _bound_enhancer(config: Any, store: Any) -> Any:
    """The enhancer of ``config`` reading ``store`` (the constructor keyword this version accepts)."""
    if IntentSource is None:
        return IntentEnhancer(config, store=store)
    missing = "raise" if config.missing == "raise" else "zeros"  # a learned vector fills the rows not found
    return IntentEnhancer(config, source=IntentSource(store, missing=missing))


def run_digests(root: Path, data: Path) -> dict[str, Any]:
    """Two epochs of SR-GNN and STAMP, with and without the enhancer, through the harness's ``train`` API."""
    runs = {
        "srgnn_plain": ["--model", "srgnn"],
        "srgnn_enhancer": ["--model", "srgnn", "--enhancer"],
        "stamp_enhancer_gate": ["--model", "stamp", "--enhancer", "--fusion", "gate", "--aux-weight", "0.3"],
        "stamp_plain": ["--model", "stamp"],
    }
    stores = [
        "--store-train",
        str(root / "top5_f16" / "store.safetensors"),
        "--store-valid",
        str(root / "split_valid" / "store.safetensors"),
        "--store-test",
        str(root / "split_test" / "store.safetensors"),
    ]
    out: dict[str, Any] = {}
    for name, argv in runs.items():
        result_path = root / "runs" / f"{name}.json"
        common = ["--data", str(data), "--epochs", "2", "--hidden-size", "8", "--batch-size", "16", "--quiet"]
        args = train.parse_args([*common, *argv, *(stores if "--enhancer" in argv else []), "--out", str(result_path)])
        train.setup_logging(args)
        torch.manual_seed(0)
        result = train.run(args)
        kept = kept_results(result)
        out[name] = {key: digest(value) for key, value in sorted(kept.items())}
        ranks = np.load(result_path.with_suffix(".ranks.npz"))
        out[name].update({f"ranks {key}": digest(ranks[key]) for key in sorted(ranks.files)})
    return out


def hiphop_digests(root: Path, data: Path) -> dict[str, Any]:
    """HIPHOP's parts: two epochs of the HIPHOP SR-GNN (intents, neighbours, contrastive with bank and batch
    hard negatives), and the semantic item embedding in both modes on a fixed text matrix."""
    out: dict[str, Any] = {}
    common = ["--data", str(data), "--epochs", "2", "--hidden-size", "8", "--batch-size", "16", "--quiet"]
    runs = {
        "hiphop_bank": ["--intents", "--neighbours", "--contrastive", "--hard-negatives", "bank", "--top-m", "3"],
        "hiphop_batch": ["--neighbours", "--contrastive", "--hard-negatives", "batch", "--num-hard-negatives", "2"],
    }
    for name, argv in runs.items():
        args = hiphop_srgnn.parse_args([*common, *argv, "--out", str(root / "runs" / f"{name}.json")])
        torch.manual_seed(0)
        result = hiphop_srgnn.run(args)
        kept = kept_results(result)
        out[name] = {key: digest(value) for key, value in sorted(kept.items())}
    text = torch.from_numpy(np.random.default_rng(0).standard_normal((NUM_ITEMS + 1, 12)).astype(np.float32))
    for mode in ("add", "init"):
        torch.manual_seed(0)
        semantic = SemanticItemEmbedding(text, 8, mode=mode)
        rows = torch.tensor([1, 5, 0, 30])
        out[f"semantic_{mode}"] = {
            "state": digest([digest(v) for _, v in sorted(semantic.state_dict().items())]),
            "forward": digest(semantic(rows)) if mode == "add" else digest(semantic.projected_text()),
        }
    return out


def collect() -> dict[str, Any]:
    """Every digest, keyed by output."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="compare_outputs_") as tmp:
        root = Path(tmp)
        data = root / "data"
        write_data(data)
        encoder = TextEncoder()
        result: dict[str, Any] = {"stores": build_stores(root, data, encoder)}
        result["enhancer"] = enhancer_digests(root / "top5_f16" / "store.safetensors")
        result["runs"] = run_digests(root, data)
        result["hiphop"] = hiphop_digests(root, data)
    return result


def compare(before: Path, after: Path) -> int:
    """Print every output whose digest differs (or exists on one side only); 0 when none does."""
    a, b = (json.loads(p.read_text()) for p in (before, after))

    def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(flat(value, f"{prefix}{key} / ") if isinstance(value, dict) else {prefix + key: value})
        return out

    fa, fb = flat(a), flat(b)
    differ = sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))
    for key in differ:
        print(f"differs: {key}")
    print(f"{len(fa)} digests before, {len(fb)} after, {len(differ)} differ")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the digests here (default: print them)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="compare two digest files")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    text = json.dumps(collect(), indent=1, sort_keys=True) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
