"""Simple session-based baselines (session-rec's comparisons), scored like the neural models of ``train``.

Every model is fitted on the training sessions only (:mod:`.sessions`), chosen on validation
(:mod:`.search`) and evaluated on test once (:mod:`.cli`, ``python -m llm4sbr_adapter.experiments.baselines``):

* ``pop``, ``markov``, ``sr``: popularity, first-order transitions, sequential rules (:mod:`.base`,
  :mod:`.transitions`);
* ``sknn``, ``vsknn``: session-kNN and its sequence-aware variant as session-rec defines them (:mod:`.knn`);
* ``stan``, ``vstan``: STAN (Garg et al. 2019) and V-STAN (Ludewig et al. 2021) (:mod:`.stan`).

Ties are broken by training popularity and the prefix's own items may be ranked last, as validation
decides (:mod:`.base`). The names below are imported on first use, so that ``python -m`` can report a
missing scipy (the ``examples`` extra) in one line.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Baseline": "base",
    "Popularity": "base",
    "popularity_tie_break": "base",
    "rank_prefix_items_last": "base",
    "ItemTransitions": "transitions",
    "SequentialRules": "transitions",
    "transition_matrix": "transitions",
    "SessionKNN": "knn",
    "VSKNN": "knn",
    "STAN": "stan",
    "VSTAN": "stan",
    "QueryItems": "neighbours",
    "MODELS": "search",
    "SPACES": "search",
    "Space": "search",
    "Queries": "search",
    "evaluate_ranks": "search",
    "evaluate_exclusions": "search",
    "on_edge": "search",
    "select_on_valid": "search",
    "BaselinesConfig": "cli",
    "load_data": "cli",
    "main": "cli",
    "parse_args": "cli",
    "run": "cli",
    "flatten": "sessions",
    "kept_rows": "sessions",
    "prefix_times": "sessions",
    "read_row_users": "sessions",
    "read_rows": "sessions",
    "training_sessions": "sessions",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
