"""LLM layer of the offline store builder: backends, answer cache and the embedded default model.

Backends share one interface (:class:`LLMBackend.generate`): user-message texts in, raw completions out,
in order. Heavy backends (transformers, llama.cpp) are imported lazily.
"""

from .base import GenerationConfig, LLMBackend, LLMError
from .cache import AnswerCache, AnswerResult, ClaimResult, answer_prompts, cache_key
from .default_model import DEFAULT_LLM_SHA256, default_llm_path, make_backend
from .openai_http import HTTPStatusError, OpenAIChatBackend
from .replay import ReplayBackend, ReplayFormatError, export_prompts, prompt_text_sha256

__all__ = [
    "GenerationConfig",
    "LLMBackend",
    "LLMError",
    "AnswerCache",
    "AnswerResult",
    "ClaimResult",
    "answer_prompts",
    "cache_key",
    "DEFAULT_LLM_SHA256",
    "default_llm_path",
    "make_backend",
    "HTTPStatusError",
    "OpenAIChatBackend",
    "ReplayBackend",
    "ReplayFormatError",
    "export_prompts",
    "prompt_text_sha256",
    "TransformersBackend",
    "LlamaCppBackend",
]


def __getattr__(name: str):  # the heavy backends (transformers, llama.cpp) load on first use
    if name == "TransformersBackend":
        from .transformers_backend import TransformersBackend

        return TransformersBackend
    if name == "LlamaCppBackend":
        from .llamacpp_backend import LlamaCppBackend

        return LlamaCppBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
