"""Stages ``encoder_load``, ``encode`` and ``catalogue``: the text encoder, the answers' and the titles'
embeddings, and the localisation queries of answers without text (the mean of the titles in view)."""

from __future__ import annotations

import os

import numpy as np

from ..encode import SentenceEncoder, TextEncoder, catalogue_embeddings
from ..inputs.catalogue import Catalogue

__all__ = ["embed_catalogue", "encode_texts", "resolve_encoder", "with_session_means"]


def resolve_encoder(encoder: str | SentenceEncoder | None, device: str) -> SentenceEncoder:
    """The config's ``encoder``: the default :class:`TextEncoder` (``None``), one on a model folder, or as given."""
    if encoder is None:
        return TextEncoder(device=device)
    if isinstance(encoder, str):
        return TextEncoder(model_path=encoder, device=device)
    return encoder


def encode_texts(
    encoder: SentenceEncoder, texts: dict[str, list[str]], progress: bool = False
) -> dict[str, np.ndarray]:
    """``float32 [n, D]`` per perspective: the L2-normalised embedding of each text, zeros where it is empty.

    Each distinct text is embedded once (in first-seen order, perspective by perspective).
    """
    distinct: dict[str, int] = {}
    for column in texts.values():
        for text in column:
            if text:
                distinct.setdefault(text, len(distinct))
    emb = np.zeros((0, encoder.dim), np.float32)
    if distinct:
        emb = encoder.encode(
            list(distinct), batch_size=64, normalize_embeddings=True, show_progress_bar=progress and len(distinct) > 640
        )
    out = {}
    for name, column in texts.items():
        vectors = np.zeros((len(column), encoder.dim), np.float32)
        for i, text in enumerate(column):
            if text:
                vectors[i] = emb[distinct[text]]
        out[name] = vectors
    return out


def embed_catalogue(
    encoder: SentenceEncoder, catalogue: Catalogue, cache_dir: str | os.PathLike, progress: bool = False
) -> np.ndarray:
    """``[num_items, D]`` title embeddings (cached in ``cache_dir`` by encoder + catalogue hash)."""
    return catalogue_embeddings(
        encoder, catalogue.item_ids.tolist(), catalogue.titles, cache_dir=cache_dir, progress=progress
    )


def with_session_means(
    vectors: dict[str, np.ndarray],
    texts: dict[str, list[str]],
    shown_rows: dict[str, list[list[int]]],
    item_emb: np.ndarray,
) -> dict[str, np.ndarray]:
    """The localisation queries: each answer's embedding, or for an answer without text the re-normalised
    mean of the title embeddings of the items its prompt showed (zeros when it showed none)."""
    out = {}
    for name, column in texts.items():
        queries = vectors[name].copy()
        for i, text in enumerate(column):
            if not text and shown_rows[name][i]:
                mean = item_emb[shown_rows[name][i]].mean(axis=0)
                norm = float(np.linalg.norm(mean))
                if norm > 0:
                    queries[i] = mean / norm
        out[name] = queries
    return out
