"""Where an enhancer's intent vectors come from: :class:`IntentSource`, an intent store bound to one split.

An :class:`~llm4sbr_adapter.store.IntentStore` is a file; an ``IntentSource`` is that file used as one split's
intents: it checks that the store fits a model (perspectives, text width, text encoder, catalogue), that a
batch's ids refer to the file the store was built from (``sessions_sha256``), applies the missing-id policy,
and hands ``{perspective: [batch, text_dim]}`` tensors to :class:`~llm4sbr_adapter.enhancer.IntentEnhancer`,
which holds no data of its own::

    source = IntentSource(IntentStore.open("train.safetensors"))
    enhancer = IntentEnhancer(config, source=source)          # forward(h_local, h_global, session_ids=ids)
    intents, found = source.lookup(ids, perspectives=config.perspectives, like=h_local)
    enhancer(h_local, h_global, intents=intents)              # the same, with the lookup in your hands

A source is a read-only handle on a possibly huge memory map: ``copy.deepcopy`` returns the same source and
pickling (``torch.save(model)``) leaves ``None`` in its place, so neither copies the store's vectors.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .store import IntentStore, StoreMismatchError

__all__ = ["IntentSource", "SourceMissing", "StoreIdentity"]

SourceMissing = Literal["raise", "zeros"]
SOURCE_MISSING: tuple[str, ...] = typing.get_args(SourceMissing)


@dataclass(frozen=True)
class StoreIdentity:
    """What makes two stores' vectors comparable: the text encoder and the catalogue (and the file, to name it)."""

    path: str
    text_encoder: str
    catalogue_sha256: str

    def differences(self, other: StoreIdentity) -> list[str]:
        """The fields (``text_encoder``, ``catalogue_sha256``) whose values differ; an empty value counts as one."""
        return [k for k in ("text_encoder", "catalogue_sha256") if getattr(self, k) != getattr(other, k)]

    def check_same_origin(self, first: StoreIdentity) -> None:
        """Raise :class:`StoreMismatchError`, naming both files, unless this store's intents come from the same
        text encoder and catalogue as ``first``'s."""
        differ = self.differences(first)
        if not differ:
            return

        def shown(ident: StoreIdentity) -> str:
            return ", ".join(f"{k} {getattr(ident, k)!r}" for k in differ)

        names = {"text_encoder": "text encoder", "catalogue_sha256": "catalogue"}
        what = " and ".join(names[k] for k in differ)
        raise StoreMismatchError(
            f"{self.path} ({shown(self)}) does not match the store this enhancer was first "
            f"bound to, {first.path} ({shown(first)}): its intents come from another {what}"
        )


def _dropped() -> None:
    """What an unpickled :class:`IntentSource` becomes: nothing (bind a source again after loading)."""
    return None


class IntentSource:
    """An intent store used as one split's intents.

    Args:
        store: an open :class:`IntentStore`.
        missing: ids absent from the store: ``"raise"`` (``KeyError`` naming them) or ``"zeros"`` (zero
            vectors, reported in the ``found`` mask that :meth:`lookup` returns).
    """

    def __init__(self, store: IntentStore, *, missing: SourceMissing = "raise") -> None:
        if not isinstance(store, IntentStore):
            raise TypeError(f"store must be an IntentStore, got {type(store).__name__}")
        if missing not in SOURCE_MISSING:
            raise ValueError(f"missing must be one of {list(SOURCE_MISSING)}, got {missing!r}")
        self._store = store
        self._missing: SourceMissing = missing

    @classmethod
    def open(cls, path: str | os.PathLike, *, missing: SourceMissing = "raise", **expected: typing.Any) -> IntentSource:
        """``IntentSource(IntentStore.open(path, **expected), missing=missing)``."""
        return cls(IntentStore.open(path, **expected), missing=missing)

    @property
    def store(self) -> IntentStore:
        """The store this source reads."""
        return self._store

    @property
    def missing(self) -> SourceMissing:
        """The missing-id policy: ``"raise"`` or ``"zeros"``."""
        return self._missing

    @property
    def identity(self) -> StoreIdentity:
        """The store's file, text encoder and catalogue."""
        meta = self._store.metadata
        return StoreIdentity(str(self._store.path), meta.text_encoder, meta.catalogue_sha256)

    def __repr__(self) -> str:
        return f"IntentSource({self._store!r}, missing={self._missing!r})"

    def __deepcopy__(self, memo: dict) -> IntentSource:
        return self  # read-only: a copy of a model reads the same file

    def __reduce__(self) -> tuple:
        return (_dropped, ())

    # ---- checks ------------------------------------------------------------------------
    def check_fits(
        self,
        perspectives: Sequence[str],
        text_dim: int,
        *,
        text_encoder: str | None = None,
        catalogue_sha256: str | None = None,
    ) -> None:
        """Raise :class:`StoreMismatchError` (a ``ValueError``) when the store lacks one of ``perspectives``, has
        another ``text_dim``, or (when given) was made by another text encoder or from another catalogue."""
        self._store.validate(
            perspectives=list(perspectives),
            text_dim=text_dim,
            text_encoder=text_encoder or None,
            catalogue_sha256=catalogue_sha256 or None,
        )

    def check_sessions_file(self, sessions_sha256: str, sessions_source: str | os.PathLike | None = None) -> None:
        """Raise :class:`StoreMismatchError` unless the store's ids refer to the file with this sha256 (integer
        ids are row numbers: rows of ``train.txt`` and ``test.txt`` share them).

        ``sessions_source`` only names that file in the error. A store that records no ``sessions_sha256``
        cannot be checked and is refused too.
        """
        store = self._store
        have = store.metadata.sessions_sha256
        if have == sessions_sha256:
            return
        batch_file = f"{sessions_source} " if sessions_source is not None else ""
        store_file = store.metadata.sessions_source or "a sessions file"
        built_for = (
            f"was built for {store_file} (sessions_sha256 {have[:12]})"
            if have
            else "records no sessions_sha256, so it cannot be matched to any sessions file"
        )
        raise StoreMismatchError(
            f"session ids refer to {batch_file}(sessions_sha256 {sessions_sha256[:12]}) but the bound store "
            f"{store.path} {built_for}: bind that file's store first (bind_store / use_split)"
        )

    # ---- lookup ------------------------------------------------------------------------
    def lookup(
        self,
        session_ids: Sequence | np.ndarray | torch.Tensor,
        *,
        perspectives: Sequence[str],
        like: torch.Tensor,
        sessions_sha256: str | None = None,
        sessions_source: str | os.PathLike | None = None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Intent vectors ``{perspective: [batch, text_dim]}`` for ``session_ids``, on ``like``'s device and dtype.

        Returns the vectors and the ``bool [batch]`` mask of ids found in the store (``None`` with
        ``missing="raise"``, where an absent id raises ``KeyError``; zero vectors stand for absent ids with
        ``"zeros"``). With ``sessions_sha256`` the store is first checked with :meth:`check_sessions_file`;
        ``like``'s batch size must equal the number of ids.
        """
        if sessions_sha256 is not None:
            self.check_sessions_file(sessions_sha256, sessions_source)
        n = len(session_ids)
        if n != like.shape[0]:
            raise ValueError(f"session_ids has {n} ids but h_local has batch size {like.shape[0]}")
        names = list(perspectives)
        if self._missing == "raise":
            return self._store.lookup(session_ids, perspectives=names, device=like.device, dtype=like.dtype), None
        vecs, found = self._store.lookup(
            session_ids, perspectives=names, device=like.device, dtype=like.dtype, missing="zeros", return_found=True
        )
        return vecs, found.to(like.device)
