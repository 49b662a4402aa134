"""Item embeddings that carry the semantics of item titles (HIPHOP's pluggable item semantics).

:class:`SemanticItemEmbedding` takes a matrix of title-text vectors aligned with the backbone's
embedding rows (``text[row]`` describes the item the backbone stores in embedding row ``row``;
row ``padding_idx`` is the padding item) and brings them into the backbone's item space of
size ``d`` in one of two ways:

``mode="init"``
    A fixed, fitted projection (``"pca"``: the top-``d`` principal directions of the text
    vectors, or ``"random"``: a seeded Gaussian random projection) maps every titled item's text
    vector to ``d`` dimensions, rescaled to the standard deviation of the backbone's own
    initialisation, and :meth:`SemanticItemEmbedding.attach` copies the result into the backbone's
    ``nn.Embedding``. The id embedding then trains as usual, starting from semantic positions.
    Items without a title keep the backbone's random initialisation; the padding row is zeroed.

``mode="add"``
    The module replaces the backbone's embedding: ``E[i] = id_embedding[i] + P(text[i])`` with a
    trainable projection ``P`` (``"linear"`` or a two-layer ``"mlp"``). Items without a title use a
    learned ``missing`` vector instead of ``P(text[i])`` (``missing="learned"``) or nothing
    (``missing="zeros"``: the id embedding alone). The padding row of the output is exactly
    zero, even if the backbone's initialisation filled the id embedding's padding row.

Guarding against re-initialisation. Many SR-GNN implementations end their constructor with a
``reset_parameters()`` that draws *every* parameter uniformly; RecBole models call
``self.apply(self._init_weights)``. Injected vectors written before such a call are erased
without any error. In ``"init"`` mode :meth:`attach` records a fingerprint (a SHA-256 of the
injected rows plus a copy of them), registers a one-shot forward pre-hook on the target
embedding that calls :meth:`verify` on the first forward pass, and :meth:`verify` raises
:class:`SemanticInitError` when the rows were overwritten. In ``"add"`` mode the text vectors
are a buffer, not a parameter, so no parameter-wide re-initialisation can erase them (it only
redraws the trainable projection, which is meant to be learnt anyway).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..errors import Llm4sbrError

logger = logging.getLogger(__name__)

__all__ = ["SemanticItemEmbedding", "SemanticInitError", "align_text_to_rows", "fit_text_projection"]


class SemanticInitError(Llm4sbrError, RuntimeError):
    """The semantic vectors written into a backbone embedding were overwritten afterwards."""


def align_text_to_rows(
    num_rows: int,
    row_of_item: Mapping[object, int],
    item_ids: Sequence[object],
    vectors: np.ndarray | Tensor,
    *,
    padding_idx: int | None = 0,
) -> tuple[Tensor, Tensor]:
    """Scatter catalogue text vectors into the backbone's embedding-row order.

    Args:
        num_rows: rows of the backbone's item embedding (including padding).
        row_of_item: the backbone's mapping from raw item id to embedding row.
        item_ids: raw item ids of ``vectors``' rows (e.g. the catalogue order given to
            ``catalogue_embeddings``); items absent from ``row_of_item`` are ignored.
        vectors: ``[len(item_ids), text_dim]`` text vectors; a row of all zeros counts as "no title".
        padding_idx: the padding row, never marked as having text.

    Returns:
        ``(text [num_rows, text_dim] float32, has_text [num_rows] bool)``; rows of items without a
        vector are zero with ``has_text = False``.
    """
    vec = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
    if vec.ndim != 2 or vec.shape[0] != len(item_ids):
        raise ValueError(f"vectors must be [len(item_ids)={len(item_ids)}, text_dim], got {tuple(vec.shape)}")
    text = torch.zeros(num_rows, vec.shape[1])
    has_text = torch.zeros(num_rows, dtype=torch.bool)
    for src, item in enumerate(item_ids):
        row = row_of_item.get(item)
        if row is None:
            continue
        if not 0 <= row < num_rows:
            raise ValueError(f"item id {item!r} maps to row {row}, outside [0, {num_rows})")
        if padding_idx is not None and row == padding_idx:
            raise ValueError(f"item id {item!r} maps to the padding row {padding_idx}")
        text[row] = vec[src]
        has_text[row] = bool(vec[src].abs().sum() > 0)
    return text, has_text


def fit_text_projection(text: Tensor, dim: int, method: str = "pca", *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Fit a fixed linear map from text space to ``dim`` dimensions.

    Args:
        text: ``[n, text_dim]`` text vectors of the items that have a title.
        dim: output size ``d``.
        method: ``"pca"`` (top principal directions; if ``dim`` exceeds the available rank, the
            remaining columns are filled with random directions orthogonal to nothing in
            particular) or ``"random"`` (Gaussian ``N(0, 1/dim)`` matrix).
        seed: seed of the random parts.

    Returns:
        ``(mean [text_dim], matrix [text_dim, dim])``; projected = ``(text - mean) @ matrix``.
    """
    if text.ndim != 2 or text.shape[0] == 0:
        raise ValueError(f"need a non-empty [n, text_dim] matrix to fit a projection, got {tuple(text.shape)}")
    gen = torch.Generator().manual_seed(seed)
    text = text.double()
    text_dim = text.shape[1]
    if method == "random":
        return torch.zeros(text_dim), (
            torch.randn(text_dim, dim, generator=gen, dtype=torch.float64) / dim**0.5
        ).float()
    if method != "pca":
        raise ValueError(f"unknown projection method {method!r}; use 'pca' or 'random'")
    mean = text.mean(dim=0)
    _, s, vh = torch.linalg.svd(text - mean, full_matrices=False)
    rank = int((s > s.max() * 1e-6).sum()) if s.numel() else 0
    take = min(dim, rank)
    matrix = vh[:take].T  # [text_dim, take]
    if take < dim:
        extra = torch.randn(text_dim, dim - take, generator=gen, dtype=torch.float64) / text_dim**0.5
        matrix = torch.cat([matrix, extra], dim=1)
    return mean.float(), matrix.float()


def _fingerprint(t: Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _text_rows(
    text: Tensor | np.ndarray, has_text: Tensor | np.ndarray | None, padding_idx: int | None
) -> tuple[Tensor, Tensor]:
    """The text matrix ``float32 [num_rows, text_dim]`` and the ``bool [num_rows]`` rows that have a text
    (default: the non-zero rows; never the padding row), checked."""
    text_t = torch.as_tensor(np.asarray(text, dtype=np.float32) if not isinstance(text, Tensor) else text).float()
    if text_t.ndim != 2:
        raise ValueError(f"text must be [num_rows, text_dim], got shape {tuple(text_t.shape)}")
    num_rows = text_t.shape[0]
    if has_text is None:
        has_text_t = text_t.abs().sum(dim=1) > 0
    else:
        has_text_t = torch.as_tensor(np.asarray(has_text) if not isinstance(has_text, Tensor) else has_text).bool()
        if has_text_t.shape != (num_rows,):
            raise ValueError(f"has_text must be [num_rows={num_rows}], got {tuple(has_text_t.shape)}")
    if padding_idx is not None:
        if not 0 <= padding_idx < num_rows:
            raise ValueError(f"padding_idx {padding_idx} outside [0, {num_rows})")
        has_text_t = has_text_t.clone()
        has_text_t[padding_idx] = False
    if not bool(has_text_t.any()):
        raise ValueError("no item has a text vector: nothing to inject")
    return text_t, has_text_t


class SemanticItemEmbedding(nn.Module):
    """Title-text semantics for a backbone's item embedding; see the module docstring.

    Args:
        text: ``[num_rows, text_dim]`` text vectors in the backbone's row order (see
            :func:`align_text_to_rows`).
        hidden_size: the backbone's item dimension ``d``.
        mode: ``"add"`` or ``"init"``.
        has_text: ``[num_rows]`` bool, ``True`` where the item has a title; default: rows that are
            not all zero. The padding row is always treated as untitled.
        padding_idx: padding row (``None`` if the backbone has none).
        projection: ``"linear"`` or ``"mlp"`` (``"add"`` mode only).
        init_method: ``"pca"`` or ``"random"`` (``"init"`` mode only).
        missing: ``"learned"`` or ``"zeros"``: what untitled items add in ``"add"`` mode.
        id_embedding: ``"add"`` mode's id embedding; default: a new ``nn.Embedding`` (or pass the
            backbone's own, or call :meth:`attach`).
        seed: seed of the fixed projection.
    """

    # registered buffers (nn.Module's __getattr__ would type them Tensor | Module)
    text: Tensor
    has_text: Tensor
    proj_mean: Tensor  # "init" mode
    proj_matrix: Tensor  # "init" mode
    injected: Tensor  # "init" mode, after attach()
    # set with object.__setattr__ so that it stays a plain reference, not a registered child
    _target: nn.Embedding | None

    def __init__(
        self,
        text: Tensor | np.ndarray,
        hidden_size: int,
        *,
        mode: str = "add",
        has_text: Tensor | np.ndarray | None = None,
        padding_idx: int | None = 0,
        projection: str = "linear",
        init_method: str = "pca",
        missing: str = "learned",
        id_embedding: nn.Embedding | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if mode not in ("add", "init"):
            raise ValueError(f"mode must be 'add' or 'init', got {mode!r}")
        if missing not in ("learned", "zeros"):
            raise ValueError(f"missing must be 'learned' or 'zeros', got {missing!r}")
        text_t, has_text_t = _text_rows(text, has_text, padding_idx)
        num_rows, text_dim = text_t.shape
        self.mode = mode
        self.hidden_size = hidden_size
        self.num_rows = num_rows
        self.text_dim = text_dim
        self.padding_idx = padding_idx
        self.missing = missing
        self.register_buffer("text", text_t.contiguous())
        self.register_buffer("has_text", has_text_t)
        self._fingerprint: str | None = None
        object.__setattr__(self, "_target", None)
        self._hook: RemovableHandle | None = None
        if mode == "add":
            if projection == "linear":
                self.projection: nn.Module = nn.Linear(text_dim, hidden_size)
            elif projection == "mlp":
                self.projection = nn.Sequential(
                    nn.Linear(text_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size)
                )
            else:
                raise ValueError(f"projection must be 'linear' or 'mlp', got {projection!r}")
            self.missing_vector = nn.Parameter(torch.zeros(hidden_size)) if missing == "learned" else None
            if id_embedding is None:
                id_embedding = nn.Embedding(num_rows, hidden_size, padding_idx=padding_idx)
            self._check_embedding(id_embedding)
            self.id_embedding = id_embedding
        else:
            mean, matrix = fit_text_projection(text_t[has_text_t], hidden_size, init_method, seed=seed)
            self.register_buffer("proj_mean", mean)
            self.register_buffer("proj_matrix", matrix)
        logger.info(
            "SemanticItemEmbedding(mode=%s): %d rows, %d with text, text_dim=%d -> d=%d",
            mode,
            num_rows,
            int(has_text_t.sum()),
            text_dim,
            hidden_size,
        )

    # ------------------------------------------------------------------ helpers
    def _check_embedding(self, emb: nn.Embedding) -> None:
        if not isinstance(emb, nn.Embedding):
            raise TypeError(f"expected an nn.Embedding, got {type(emb).__name__}")
        if emb.num_embeddings != self.num_rows or emb.embedding_dim != self.hidden_size:
            raise ValueError(
                f"embedding is [{emb.num_embeddings}, {emb.embedding_dim}] but the text matrix needs "
                f"[{self.num_rows}, {self.hidden_size}] (rows must be in the backbone's item order)"
            )

    def _text_part(self, rows: Tensor | None) -> Tensor:
        """``"add"`` mode: projected text (or missing vector) for item rows ``[...]`` -> ``[..., d]``; ``None``:
        every row in order, without gathering a copy of the ``[num_rows, text_dim]`` text matrix first."""
        text, has = (self.text, self.has_text) if rows is None else (self.text[rows], self.has_text[rows])
        proj = self.projection(text)
        has = has.unsqueeze(-1)
        fallback = self.missing_vector.expand_as(proj) if self.missing_vector is not None else torch.zeros_like(proj)
        return torch.where(has, proj, fallback)

    def projected_text(self, target_std: float | None = None) -> Tensor:
        """``"init"`` mode: the fixed projection of every row's text, ``[num_rows, d]``.

        Rows without text are zero. With ``target_std`` the titled rows are rescaled so that their
        entries have that standard deviation.
        """
        if self.mode != "init":
            raise RuntimeError("projected_text() is for mode='init'; in 'add' mode use forward()/weight")
        out = (self.text - self.proj_mean) @ self.proj_matrix
        out = out * self.has_text.unsqueeze(1)
        if target_std is not None:
            std = out[self.has_text].std().clamp(min=1e-12)
            out = out * (target_std / std)
        return out

    # ------------------------------------------------------------------ attach / verify
    def attach(self, embedding: nn.Embedding, *, target_std: float | None = None, hook: bool = True) -> None:
        """Connect to a backbone's item embedding.

        ``"init"`` mode: overwrite the titled rows of ``embedding.weight`` with the projected
        text (scaled to ``target_std``, default: the standard deviation of the embedding's current
        values, i.e. of the backbone's own initialisation), zero the padding row, record the
        fingerprint, and (``hook=True``) register a one-shot forward pre-hook that runs
        :meth:`verify` the first time the embedding is used.

        ``"add"`` mode: use ``embedding`` as the id embedding (then put this module where the
        backbone looks up items, e.g. ``model.embedding = sem``).
        """
        self._check_embedding(embedding)
        if self.mode == "add":
            self.id_embedding = embedding
            return
        with torch.no_grad():
            w = embedding.weight
            if target_std is None:
                target_std = float(w.std())
            vectors = self.projected_text(target_std).to(device=w.device, dtype=w.dtype)
            w[self.has_text] = vectors[self.has_text.to(w.device)]
            if self.padding_idx is not None:
                w[self.padding_idx] = 0.0
            injected = w[self.has_text].detach().clone()
        self.register_buffer("injected", injected, persistent=False)
        self._fingerprint = _fingerprint(injected)
        # a plain reference, not a registered child: the backbone owns (and saves) this embedding
        object.__setattr__(self, "_target", embedding)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if hook:

            def _verify_once(module: nn.Module, args: tuple) -> None:
                self.verify()
                if self._hook is not None:
                    self._hook.remove()
                    self._hook = None

            self._hook = embedding.register_forward_pre_hook(_verify_once)

    def verify(self, min_similarity: float | None = None) -> float:
        """Check that the injected rows are still in the attached embedding (``"init"`` mode).

        Args:
            min_similarity: ``None``: the rows must be bit-identical to what :meth:`attach` wrote
                (call before training starts). A float: the mean cosine similarity between the
                current and injected rows must reach it (usable during training, when the rows
                drift legitimately but a re-initialisation drops the similarity to about 0).

        Returns:
            The mean row cosine similarity (1.0 when identical).

        Raises:
            SemanticInitError: when the rows were overwritten.
            RuntimeError: when nothing was attached.
        """
        if self.mode != "init":
            return 1.0  # the text lives in this module's buffer: nothing outside can erase it
        if self._target is None or self._fingerprint is None:
            raise RuntimeError("verify() before attach(): nothing was injected")
        current = self._target.weight[self.has_text.to(self._target.weight.device)].detach()
        sim = float(nn.functional.cosine_similarity(current.float(), self.injected.float(), dim=1).mean())
        if min_similarity is None:
            if _fingerprint(current) != self._fingerprint:
                raise SemanticInitError(
                    "the semantic item vectors injected by SemanticItemEmbedding.attach() were overwritten "
                    f"(mean cosine to the injected rows is now {sim:.3f}); the backbone probably re-initialised "
                    "its parameters after attach(): call attach() after the backbone's reset_parameters()/init"
                )
        elif sim < min_similarity:
            raise SemanticInitError(
                f"semantic item vectors drifted or were re-initialised: mean cosine {sim:.3f} < {min_similarity}"
            )
        return sim

    # ------------------------------------------------------------------ nn.Embedding-like interface
    @property
    def weight(self) -> Tensor:
        """The full item matrix ``[num_rows, d]`` (``"add"``: id + text part; ``"init"``: the attached embedding)."""
        if self.mode == "init":
            if self._target is None:
                raise RuntimeError("mode='init' module has no embedding until attach() is called")
            return self._target.weight
        out = self.id_embedding.weight + self._text_part(None)
        if self.padding_idx is None:
            return out
        keep = torch.ones(self.num_rows, 1, dtype=out.dtype, device=out.device)
        keep[self.padding_idx] = 0.0
        return out * keep  # the padding row is zero, as forward() makes it

    @property
    def num_embeddings(self) -> int:
        return self.num_rows

    @property
    def embedding_dim(self) -> int:
        return self.hidden_size

    def forward(self, item_rows: Tensor) -> Tensor:
        """Embed item rows ``[...]`` (int64) -> ``[..., d]``; padding rows map to zero in ``"add"`` mode."""
        if self.mode == "init":
            if self._target is None:
                raise RuntimeError("mode='init' module has no embedding until attach() is called")
            return self._target(item_rows)
        if item_rows.numel() and (int(item_rows.min()) < 0 or int(item_rows.max()) >= self.num_rows):
            raise IndexError(
                f"item row outside [0, {self.num_rows}): min {int(item_rows.min())}, max {int(item_rows.max())}"
            )
        return self._zero_padding(item_rows, self.id_embedding(item_rows) + self._text_part(item_rows))

    def _zero_padding(self, rows: Tensor, out: Tensor) -> Tensor:
        if self.padding_idx is None:
            return out
        return out.masked_fill((rows == self.padding_idx).unsqueeze(-1), 0.0)
