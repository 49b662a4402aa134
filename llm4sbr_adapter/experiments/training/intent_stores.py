"""Open the per-split LLM4SBR intent stores that the training scripts hand to the enhancer."""

from __future__ import annotations

from collections.abc import Mapping

from ..data.splits import SplitData


def open_stores(paths: Mapping[str, str | None], data: Mapping[str, SplitData]) -> dict:
    """``{split: IntentStore}`` for ``paths`` (keys ``train``/``valid``/``test``).

    Each store must be tied to its split's pickle (``sessions_sha256``) and cover every row of it; all
    stores must share the perspectives and text dimension of the ``train`` store. Raises ``ValueError``
    naming the missing ``--store-<split>`` flag or the offending file. (The enhancer checks each batch
    against the bound store's ``sessions_sha256`` too, so a pass over one split never reads another's.)
    """
    from llm4sbr_adapter.store import IntentStore

    stores = {}
    for split, path in paths.items():
        if path is None:
            raise ValueError(f"--enhancer needs --store-{split}")
        if data[split].sha256 is None:
            raise ValueError(
                f"--store-{split}: the {split} split was not read from a file, so {path} cannot be tied to it"
            )
        store = IntentStore.open(path, sessions_sha256=data[split].sha256)
        _, found = store.rows(data[split].ids)
        if not found.all():
            raise ValueError(f"{path}: {int((~found).sum())} of {len(found)} rows of {data[split].path} have no intent")
        stores[split] = store
    first = stores["train"]
    for store in stores.values():
        if store.perspectives != first.perspectives or store.text_dim != first.text_dim:
            raise ValueError(
                f"{store.path} has perspectives {store.perspectives} / dim {store.text_dim}, "
                f"but {first.path} has {first.perspectives} / {first.text_dim}"
            )
    return stores
