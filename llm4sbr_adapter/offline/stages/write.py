"""Stage ``write``: the store's metadata (every build setting too) and the store itself, written atomically."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from ...store import StoreMetadata, write_store
from ..config import BuildConfig
from ..encode import SentenceEncoder
from ..inputs.catalogue import Catalogue
from ..inputs.sessions import SessionSet
from ..prompts import Perspective, prompt_sha256
from .localize import LocalizedIntents

__all__ = ["store_metadata", "write_intents"]


def store_metadata(
    config: BuildConfig,
    perspectives: Sequence[Perspective],
    sessions: SessionSet,
    catalogue: Catalogue,
    *,
    llm: str,
    encoder: SentenceEncoder,
    shard: str = "",
    untitled: Collection[int] = (),
) -> StoreMetadata:
    """What the store records about its build (every setting too, as ``extra["build_config"]``)."""
    return StoreMetadata(
        perspectives=[p.name for p in perspectives],
        text_dim=int(encoder.dim),
        text_encoder=encoder.name,
        llm=llm,
        top_f=int(config.top_f),
        prompts={p.name: p.template for p in perspectives},
        prompt_sha256=prompt_sha256(perspectives, config.max_items),
        catalogue_sha256=catalogue.sha256,
        sessions_source=sessions.source,
        sessions_sha256=sessions.sha256,
        shard=shard,
        extra={
            "builder": "llm4sbr_adapter.offline",
            "qualifiers": {p.name: p.qualifier for p in perspectives},
            "last_n": {p.name: p.last_n for p in perspectives},
            "max_items": int(config.max_items),
            "generation": config.generation.to_dict(),
            "softmax_temperature": float(config.softmax_temperature),
            "index": config.index,
            "on_missing_title": config.on_missing_title,
            "on_empty_answer": config.on_empty_answer,
            "catalogue_source": catalogue.source,
            "catalogue_html_unescaped": int(catalogue.html_unescaped),
            "untitled_sessions": len(untitled),
            # every setting, loadable with BuildConfig.from_dict (the shard is the field above)
            "build_config": config.replace(shard=None).to_payload(),
        },
    )


def write_intents(
    output: Path,
    sessions: SessionSet,
    catalogue: Catalogue,
    located: LocalizedIntents,
    cleaned: dict[str, list[str]],
    raw: dict[str, list[str]],
    meta: StoreMetadata,
    dtype: str = "float32",
) -> Path:
    """:func:`write_store` (atomic) with the intents, the top-f explanations (when ``top_f > 0``) and the answers."""
    keep_top = meta.top_f > 0
    return write_store(
        output,
        sessions.ids,
        located.intents,
        meta,
        dtype=dtype,
        top_items=located.top_items if keep_top else None,
        top_weights=located.top_weights if keep_top else None,
        item_ids=catalogue.item_ids if keep_top else None,
        answers=cleaned,
        raw_answers=raw,
    )
