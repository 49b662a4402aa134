"""How much an intent store knows about the next item: its intents used as a recommender on their own.

    python -m llm4sbr_adapter.experiments.evaluation.intent_quality --data DIR --split valid \\
        --store A.safetensors B.safetensors

For every row of ``DIR/<split>.txt`` each store's intents rank the whole catalogue, each perspective alone
and all of them together:

* a localised store (one with ``top_items`` / ``top_weights``) ranks the items its intent was snapped to
  first, by their softmax weight (summed over the perspectives for "together"), and every other item after
  them by the cosine between its title embedding and the intent vector (for "together", the normalised
  sum of the perspectives' normalised vectors);
* a store of raw answer embeddings (``top_f = 0``) ranks by that cosine alone.

Beside the stores, in the same run and on the same rows, the semantic-neighbour control ranks by the cosine
to the mean title embedding of the row's input items (all of them, and the last ``--control-window``), and
the transition control ranks by the votes of ``train.txt``'s item transitions (the list the
``*_candidates`` prompts show the LLM), then by that cosine: what a candidate list knows without an LLM.
Every ranking is scored twice: as it is, and with the row's own input items moved to the bottom ("own
items last": domain knowledge, right where users do not repeat items).

Printed per ranking: HR / MRR / NDCG at each K (over all rows; a hit only within rank K; ties counted
pessimistically, see :mod:`.metrics`), the share of rows whose top-1 item is one of the row's own input
items, and the number of distinct top-1 items. Targets are read here, for evaluation only; nothing here
feeds a build or a training run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from llm4sbr_adapter.atomic_files import atomic_write_text
from llm4sbr_adapter.config import ConfigBase, setting
from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args
from llm4sbr_adapter.errors import CliParser, Llm4sbrError, add_log_level, flag_or_name, run_cli
from llm4sbr_adapter.offline.candidates import TransitionCandidates
from llm4sbr_adapter.offline.inputs.catalogue import read_catalogue
from llm4sbr_adapter.offline.inputs.sessions import SessionSet, read_sessions
from llm4sbr_adapter.output_paths import check_writes
from llm4sbr_adapter.store import IntentStore

from ..data.catalogue import read_items_tsv
from ..data.prepared_files import data_inputs
from ..data.splits import SplitData, load_split
from ..data.text_mean_store import encode_titles, mean_intents
from .metrics import summarize_ranks, target_ranks
from .zero_shot_run import write_zero_shot_run

__all__ = [
    "IntentQualityConfig",
    "QualityRow",
    "control_scorers",
    "evaluate_scorer",
    "main",
    "store_scorers",
]

#: Score given to a snapped item on top of its weight: above any cosine (<= 1), so snapped items come first.
_SNAPPED = 3.0
_CHUNK_ROWS = 1024

#: ``scores(lo, hi)``: ``float32 [hi - lo, N + 1]`` scores of rows ``lo..hi-1`` for item columns ``0..N``.
Scorer = Callable[[int, int], torch.Tensor]


class IntentQualityError(Llm4sbrError, ValueError):
    """A store does not belong to the split or catalogue it is scored on."""


@dataclasses.dataclass
class IntentQualityConfig(ConfigBase):
    """Settings of one intent-quality run."""

    FORMAT = "llm4sbr_intent_quality_config"

    data: str = setting(help="prepared data folder (SPLIT.txt, items.tsv)", metavar="DIR")
    split: str = setting("valid", "the split whose rows are scored (DIR/SPLIT.txt); its stores must be built on it")
    stores: tuple[str, ...] = setting(
        (), "intent stores built on DIR/SPLIT.txt (one or more; the flag may be repeated)", flag="--store"
    )
    ks: tuple[int, ...] = setting((5, 10, 20), "cut-offs K of HR@K, MRR@K, NDCG@K")
    control_window: int = setting(3, "the control's short view: mean of the last N input titles", minimum=1)
    transitions: bool = setting(
        True,
        "also rank by the transition votes of DIR/train.txt (what the long/short_candidates prompts list), "
        "then by the title-mean cosine: the information a candidate list holds without an LLM",
    )
    encoder: str | None = setting(
        None, "text encoder folder for the titles (default: the stores' default, all-MiniLM-L6-v2)", metavar="PATH"
    )
    json_path: str | None = setting(None, "also write every number as JSON here", flag="--json", metavar="FILE")
    runs: str | None = setting(
        None,
        "also write the store's --view ranking of the test rows as a run, DIR/<--name>_s<--seed>.json + "
        ".ranks.npz, for Table 2's 'LLM zero-shot' row (needs --split test and one --store)",
        metavar="DIR",
    )
    name: str = setting("llm_zeroshot", "with --runs: the run's name (Table 2's group)")
    view: str = setting("together", "with --runs: the ranking written: 'together' or one perspective of the store")
    seed: int = setting(0, "with --runs: the seed of the data folder, pairing the run with that seed's others")
    own_items_last: bool = setting(False, "with --runs: rank the row's own input items last in the written run")

    def validate(self) -> None:
        if any(k < 1 for k in self.ks):
            self.fail("ks", f"must be positive, got {list(self.ks)}")
        if self.runs is not None and (self.split != "test" or len(self.stores) != 1):
            self.fail("runs", f"needs {self.ref('split')} test and exactly one {self.ref('stores')}")
        if not self.name or "/" in self.name or "\\" in self.name:
            self.fail("name", f"must be a file name without a folder, got {self.name!r}")


@dataclasses.dataclass
class QualityRow:
    """The scores of one ranking on one split."""

    name: str
    own_items_last: bool
    metrics: dict[str, float]
    top1_own_share: float
    distinct_top1: int
    rows: int


# --------------------------------------------------------------------------- scoring
def _normalised(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 0, x / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def _cosine_scorer(queries: np.ndarray, items: torch.Tensor) -> Scorer:
    """Cosine of each row's query to every item (``items`` rows L2-normalised; row 0 = padding)."""
    q = torch.from_numpy(_normalised(np.asarray(queries, dtype=np.float32)))
    return lambda lo, hi: q[lo:hi] @ items.T


def _snapped_scorer(weights: torch.Tensor, cosine: Scorer) -> Scorer:
    """Snapped items first by weight (``weights [rows, N + 1]``, 0 = not snapped), the rest by cosine."""

    def scores(lo: int, hi: int) -> torch.Tensor:
        w = weights[lo:hi]
        return torch.where(w > 0, _SNAPPED + w, cosine(lo, hi))

    return scores


def _item_columns(arrays: dict, num_items: int, path: Path) -> np.ndarray:
    """Catalogue column (item id ``1..N``) of every entry of the store's ``item_ids``."""
    try:
        columns = np.asarray([int(i) for i in arrays["item_ids"]], dtype=np.int64)
    except ValueError:
        raise IntentQualityError(f"{path}: item_ids are not the integer ids of the prepared items.tsv") from None
    if len(columns) and (columns.min() < 1 or columns.max() > num_items):
        raise IntentQualityError(f"{path}: item_ids outside 1..{num_items} of the prepared items.tsv")
    return columns


def _weight_matrix(top: np.ndarray, weights: np.ndarray, columns: np.ndarray, num_items: int) -> torch.Tensor:
    """``float32 [rows, N + 1]``: each row's snapped weight per item column (0 where not snapped)."""
    out = np.zeros((len(top), num_items + 1), dtype=np.float32)
    valid = top >= 0
    rows = np.repeat(np.arange(len(top)), top.shape[1]).reshape(top.shape)
    np.add.at(out, (rows[valid], columns[top[valid]]), weights[valid])
    return torch.from_numpy(out)


def _bound_arrays(path: Path, data: SplitData, catalogue: Path) -> dict:
    """The store's arrays in the split's row order, after checking that it was built on these files."""
    store = IntentStore.open(path)
    meta = store.metadata
    if data.sha256 != meta.sessions_sha256:
        raise IntentQualityError(
            f"{path}: built on {meta.sessions_source!r} (sha256 {meta.sessions_sha256[:12]}...), "
            f"not on {data.path} (sha256 {str(data.sha256)[:12]}...); --split must name the file the store was built on"
        )
    if meta.catalogue_sha256 and meta.catalogue_sha256 != read_catalogue(catalogue).sha256:
        raise IntentQualityError(f"{path}: built with another catalogue than {catalogue}")
    rows, found = store.rows(data.ids)
    if not found.all():
        raise IntentQualityError(f"{path}: {int((~found).sum())} rows of {data.path} have no intent")
    arrays = store.to_arrays()
    arrays["order"] = rows
    arrays["perspectives"] = store.perspectives
    return arrays


def store_scorers(path: Path, arrays: dict, items: torch.Tensor) -> dict[str, Scorer]:
    """``{"<perspective>": scorer, ..., "together": scorer}`` for one store's bound arrays (see the module
    docstring); ``items`` ``[N + 1, D]`` normalised title vectors, row 0 padding."""
    order, names = arrays["order"], arrays["perspectives"]
    num_items = items.shape[0] - 1
    vectors = {p: _normalised(np.asarray(arrays["intents"][p], dtype=np.float32)[order]) for p in names}
    snapped = all(p in arrays["top_items"] for p in names) and arrays["item_ids"] is not None
    weights: dict[str, torch.Tensor] = {}
    if snapped:
        columns = _item_columns(arrays, num_items, path)
        for p in names:
            weights[p] = _weight_matrix(
                arrays["top_items"][p][order], arrays["top_weights"][p][order], columns, num_items
            )
    out: dict[str, Scorer] = {}
    views = {p: [p] for p in names}
    if len(names) > 1:
        views["together"] = list(names)
    for view, parts in views.items():
        cosine = _cosine_scorer(np.sum([vectors[p] for p in parts], axis=0), items)
        out[view] = _snapped_scorer(torch.stack([weights[p] for p in parts]).sum(0), cosine) if snapped else cosine
    return out


def control_scorers(data: SplitData, item_vectors: np.ndarray, window: int) -> dict[str, Scorer]:
    """The semantic-neighbour control: cosine to the mean title of all inputs, and of the last ``window``."""
    items = torch.from_numpy(item_vectors)
    means = mean_intents(data, item_vectors, short_window=window)
    return {
        "mean title, all inputs": _cosine_scorer(means["long"], items),
        f"mean title, last {window} inputs": _cosine_scorer(means["short"], items),
    }


def transition_scorer(data: SplitData, train_path: Path, title_scorer: Scorer, num_items: int) -> Scorer:
    """Items by :class:`TransitionCandidates` votes from ``train_path`` first, the rest by ``title_scorer``."""
    model = TransitionCandidates(read_sessions(train_path, fmt="pickle"))
    sequences: list[list[int | str]] = [list(data.sequence(r)) for r in range(len(data))]
    rows = SessionSet(ids=data.ids, sequences=sequences, source=str(data.path))
    columns = torch.tensor([int(k) for k in model.keys], dtype=torch.int64)
    votes = torch.zeros(len(data), num_items + 1, dtype=torch.float32)
    lo = 0
    for chunk in model.score_chunks(rows):
        votes[lo : lo + len(chunk), columns] = chunk.float()
        lo += len(chunk)

    def scores(lo: int, hi: int) -> torch.Tensor:
        v = votes[lo:hi]
        return torch.where(v > 0, _SNAPPED + v, title_scorer(lo, hi))

    return scores


def evaluate_scorer(
    scorer: Scorer, data: SplitData, num_items: int, *, own_items_last: bool, ks: Sequence[int]
) -> tuple[dict[str, float], float, int]:
    """Metrics, the share of rows whose top-1 item is an own input item, and the distinct top-1 items."""
    ranks, own_top1, top1 = [], [], []
    for lo in range(0, len(data), _CHUNK_ROWS):
        hi = min(lo + _CHUNK_ROWS, len(data))
        scores = scorer(lo, hi).clone()
        scores[:, 0] = -torch.inf
        own = torch.zeros_like(scores, dtype=torch.bool)
        for k, row in enumerate(range(lo, hi)):
            own[k, data.sequence(row)] = True
        best = scores.argmax(1)
        own_top1.append(own.gather(1, best[:, None])[:, 0].numpy())
        if own_items_last:
            scores[own] = -torch.inf
            best = scores.argmax(1)
        top1.append(best.numpy())
        ranks.append(target_ranks(scores, torch.from_numpy(data.targets[lo:hi])).numpy())
    if num_items + 1 != scores.shape[1]:
        raise ValueError(f"scores have {scores.shape[1]} columns, expected {num_items + 1}")
    own_share = float(np.concatenate(own_top1).mean()) if len(data) else 0.0
    return summarize_ranks(np.concatenate(ranks), ks), own_share, len(np.unique(np.concatenate(top1)))


def quality_rows(scorers: dict[str, Scorer], data: SplitData, num_items: int, ks: Sequence[int]) -> list[QualityRow]:
    """Every scorer evaluated as it is and with own items last."""
    out = []
    for name, scorer in scorers.items():
        for last in (False, True):
            metrics, share, distinct = evaluate_scorer(scorer, data, num_items, own_items_last=last, ks=ks)
            out.append(QualityRow(name, last, metrics, share, distinct, len(data)))
    return out


# --------------------------------------------------------------------------- the command
def run(config: IntentQualityConfig, item_vectors: np.ndarray | None = None) -> list[QualityRow]:
    """Score the control and every store on ``config.split``; ``item_vectors`` ``[N + 1, D]`` skips encoding."""
    data_dir = Path(config.data)
    inputs: dict[str, Path | tuple[str, ...]] = dict(data_inputs(data_dir, flag_or_name("data", "--data")))
    inputs[flag_or_name("stores", "--store")] = config.stores
    check_writes({flag_or_name("json_path", "--json"): config.json_path}, inputs)
    data = load_split(data_dir / f"{config.split}.txt")
    catalogue = data_dir / "items.tsv"
    bound = {Path(p): _bound_arrays(Path(p), data, catalogue) for p in config.stores}  # refuse before encoding
    if item_vectors is None:
        _, titles = read_items_tsv(catalogue)
        vectors, _ = encode_titles(titles, config.encoder)
        item_vectors = np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors])
    item_vectors = _normalised(item_vectors)
    num_items = item_vectors.shape[0] - 1
    items = torch.from_numpy(item_vectors)
    controls = control_scorers(data, item_vectors, config.control_window)
    if config.transitions:
        title = controls["mean title, all inputs"]
        controls["train transitions, then mean title"] = transition_scorer(
            data, data_dir / "train.txt", title, num_items
        )
    rows = quality_rows(controls, data, num_items, config.ks)
    for path, arrays in bound.items():
        scorers = store_scorers(path, arrays, items)
        if config.runs is not None:
            _write_run(config, path, scorers, data)
        named = {f"{path.name}: {view}": s for view, s in scorers.items()}
        rows += quality_rows(named, data, num_items, config.ks)
    return rows


def _write_run(config: IntentQualityConfig, path: Path, scorers: dict[str, Scorer], data: SplitData) -> None:
    if config.view not in scorers:
        config.fail("view", f"{path} has the views {sorted(scorers)}, not {config.view!r}")
    assert config.runs is not None
    write_zero_shot_run(
        Path(config.runs) / f"{config.name}_s{config.seed}.json",
        scorer=scorers[config.view],
        data=data,
        data_dir=Path(config.data),
        store=path,
        view=config.view,
        seed=config.seed,
        own_items_last=config.own_items_last,
        ks=sorted({*config.ks, 5, 10, 20}),  # Table 2 reads @5, @10 and @20
    )


def format_table(rows: Sequence[QualityRow], ks: Sequence[int]) -> str:
    """The rows as a Markdown table (metrics in %)."""
    names = [f"{m}@{k}" for m in ("HR", "MRR", "NDCG") for k in ks]
    lines = [
        "| ranking | own items last | " + " | ".join(names) + " | top-1 is own item | distinct top-1 |",
        "|---|---|" + "---:|" * (len(names) + 2),
    ]
    for r in rows:
        cells = " | ".join(f"{100 * r.metrics[n]:.2f}" for n in names)
        last = "yes" if r.own_items_last else "no"
        lines.append(f"| {r.name} | {last} | {cells} | {100 * r.top1_own_share:.1f} % | {r.distinct_top1} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(description="Score intent stores as recommenders on their own, beside a title-mean control.")
    add_config_arguments(parser, IntentQualityConfig)
    add_log_level(parser, "warning")
    args = parser.parse_args(argv)
    return run_cli(lambda: _report(config_from_args(IntentQualityConfig, args)), args.log_level)


def _report(config: IntentQualityConfig) -> int:
    rows = run(config)
    print(f"{config.split} rows of {config.data}: {rows[0].rows if rows else 0}\n")
    print(format_table(rows, config.ks))
    if config.json_path:
        payload = {"config": config.to_dict(), "rows": [dataclasses.asdict(r) for r in rows]}
        atomic_write_text(Path(config.json_path), json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
