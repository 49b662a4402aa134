"""Backend-independent pieces of the LLM layer: generation settings and the backend interface."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ...config import check_fields, setting
from ...errors import Llm4sbrError

__all__ = ["GenerationConfig", "LLMBackend", "LLMError"]


class LLMError(Llm4sbrError, RuntimeError):
    """Raised when a backend cannot produce answers (bad response, unreachable server, bad model file)."""


@dataclass(frozen=True)
class GenerationConfig:
    """How completions are produced.

    Attributes:
        max_new_tokens: upper bound on generated tokens per prompt.
        temperature: 0.0 means greedy decoding (deterministic, the default for building stores);
            a positive value samples with that temperature.
        stop: strings that end a completion; the returned text is cut before the first one.
    """

    max_new_tokens: int = setting(
        32, "upper bound on generated tokens per answer (answers are one item name).", minimum=1
    )
    temperature: float = setting(0.0, "sampling temperature; 0 = greedy, deterministic.", minimum=0.0)
    stop: tuple[str, ...] = setting(
        default_factory=tuple, help="strings that end a completion (Python only).", cli=False
    )

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            raise TypeError("stop must be a tuple of strings, not a single string")
        check_fields(self)
        object.__setattr__(self, "stop", tuple(str(s) for s in self.stop))

    @property
    def greedy(self) -> bool:
        return float(self.temperature) == 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict with a fixed field order (used in cache keys)."""
        d = asdict(self)
        d["max_new_tokens"] = int(d["max_new_tokens"])
        d["temperature"] = float(d["temperature"])
        d["stop"] = list(self.stop)
        return d


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` before the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1 and i < cut:
                cut = i
    return text[:cut]


class LLMBackend(abc.ABC):
    """A text generator answering user messages.

    Subclasses set ``model_id``: a stable identity of model and weights (for a local model the sha256
    of its weight files, never their name or size, see :mod:`~llm4sbr_adapter.offline.model_hash`; for an
    HTTP server its base URL + model name). It is part of the answer-cache key, so two different models
    never share cached answers.
    """

    model_id: str

    #: True for a backend that reads an opening shared by neighbouring prompts once: llama.cpp keeps the
    #: previous prompt's key/value cache, the transformers backend shares one within a batch.
    #: :func:`~llm4sbr_adapter.offline.llm.cache.answer_prompts` then asks the uncached prompts in sorted
    #: order, so prompts that share an opening follow one another: the perspectives of one session
    #: (the same listing, the qualifier after it) back to back, and the prefix-augmented rows of one
    #: user, whose listings extend one another, next to each other.
    reuses_prompt_prefix: bool = False

    #: Batches the backend can answer at once from separate threads. A server backend sets its number
    #: of connections; :func:`~llm4sbr_adapter.offline.llm.cache.answer_prompts` then keeps
    #: ``concurrency // batch_size`` batches in flight, each committed to the cache on its own.
    concurrency: int = 1

    @abc.abstractmethod
    def generate(self, prompts: Sequence[str], config: GenerationConfig) -> list[str]:
        """Answer each prompt.

        Args:
            prompts: user-message texts; the backend wraps them in its chat format.
            config: generation settings.

        Returns:
            Raw completions (new text only, cut at ``config.stop``), ``len(prompts)`` items in prompt order.
        """

    def generate_labelled(self, prompts: Sequence[str], config: GenerationConfig, labels: Sequence[str]) -> list[str]:
        """:meth:`generate` for prompts that have human-readable names (e.g. ``session 's3', perspective
        'long'``) which the backend's errors and warnings may use; by default the names are ignored."""
        return self.generate(prompts, config)

    def close(self) -> None:  # noqa: B027  # pragma: no cover - a default no-op, not abstract
        """Release resources (threads, model memory). Safe to call more than once."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={getattr(self, 'model_id', '?')!r})"
