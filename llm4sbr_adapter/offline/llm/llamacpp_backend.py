"""Local generation with llama.cpp (``llama-cpp-python``) on a quantised GGUF file.

llama.cpp runs the GGUF weights as they are stored (e.g. Q4_K_M) instead of dequantising them to
float32 as transformers does, which makes a small model several times cheaper per prompt on a CPU.
The chat template embedded in the GGUF is applied by llama.cpp itself, so the model input is the same
text the transformers backend builds. Answers are greedy by default; because the arithmetic differs
(quantised kernels vs float32), the answers can differ from the transformers backend's in a few cases,
which is why the two backends have different ``model_id`` values and never share cached answers.

With ``n_parallel`` > 1 (``BuildConfig.llm_parallel``), greedy answers are decoded several prompts at once
in one context (:mod:`.parallel_decode`, :mod:`.llamacpp_sequences`): one decode call carries every live
sequence's next token, which a CPU evaluates at nearly the cost of one, and prompts that share an opening
read it once. The arithmetic of a token is the same, but the matrix kernels llama.cpp picks depend on how
many tokens a call holds, so an answer can differ in rare near-ties from the one-at-a-time answer (see
docs/results.md for how often); 1, one prompt at a time, stays the default.

``llama-cpp-python`` is an optional dependency (it compiles llama.cpp on install, about 8 minutes on
2 cores): ``pip install llama-cpp-python``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..model_hash import stamped_sha256
from .base import GenerationConfig, LLMBackend, LLMError, truncate_at_stop
from .llamacpp_sequences import Completions, LlamaSequences, chat_formatter, chat_tokens
from .parallel_decode import DecodeCounts, ParallelDecoder

__all__ = ["LlamaCppBackend"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install llama-cpp-python"


class LlamaCppBackend(LLMBackend):
    """Generation with llama.cpp, one prompt at a time or (``n_parallel`` > 1, greedy) several at once.

    llama.cpp keeps the key/value cache of the previous prompt and re-evaluates only the tokens after the
    longest shared prefix, so the chat template's fixed opening (system message, instruction text) is
    computed once rather than for every prompt. The backend sets ``reuses_prompt_prefix``, so the
    answer loop asks prompts in sorted order and the prefix-augmented rows of one session (which list
    the same first items) are read mostly from that cache.

    Args:
        model_path: a ``.gguf`` file.
        n_threads: CPU threads for generation; None -> ``os.cpu_count()``.
        n_ctx: context window in tokens (prompt + answer); a longer prompt raises :class:`LLMError`.
        n_batch: tokens evaluated per forward pass while reading the prompt.
        n_gpu_layers: layers offloaded to a GPU when llama.cpp was built with one (0 = CPU only).
        model_id: identity used in cache keys; default ``llamacpp:gguf-sha256:<sha256 of the file>``
            (computed once and stamped, see :mod:`..model_hash`).
        seed: sampling seed (only used when ``temperature > 0``).
        n_parallel: prompts decoded at once when answers are greedy (1: one at a time, through
            ``create_chat_completion``); each of them may hold ``n_ctx`` tokens.
    """

    reuses_prompt_prefix = True

    def __init__(
        self,
        model_path: str | os.PathLike,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        n_batch: int = 512,
        n_gpu_layers: int = 0,
        *,
        model_id: str | None = None,
        seed: int = 0,
        n_parallel: int = 1,
    ) -> None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"GGUF model file not found: {path}")
        if path.suffix.lower() != ".gguf":
            raise LLMError(f"the llama.cpp backend reads .gguf files, got {path}")
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise ImportError(f"the llama.cpp backend needs llama-cpp-python: {INSTALL_HINT}") from e

        if int(n_parallel) < 1:
            raise ValueError(f"n_parallel must be >= 1, got {n_parallel}")
        self.model_path = path
        self.n_parallel = int(n_parallel)
        self.sequences: LlamaSequences | None = None  # made on the first parallel call
        self.decoder: ParallelDecoder | None = None
        self.decode_counts = DecodeCounts()  # tokens evaluated by parallel calls, summed
        self.llm: Any = None  # the Llama instance (llama_cpp's own type when it is installed), None once closed
        self.n_threads = int(n_threads or os.cpu_count() or 1)
        self.n_ctx = int(n_ctx)
        t0 = time.perf_counter()
        try:
            # n_threads_batch (prompt reading) defaults to every core in llama-cpp-python; tie it to
            # n_threads so a build asked to leave cores free really does.
            self.llm = Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_batch=int(n_batch),
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_gpu_layers=int(n_gpu_layers),
                seed=int(seed),
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise LLMError(f"llama.cpp cannot load {path}: {e}") from e
        self.load_seconds = time.perf_counter() - t0
        self.model_id = f"llamacpp:{model_id or f'gguf-sha256:{stamped_sha256(path)}'}"
        logger.info("loaded %s with llama.cpp (%d threads) in %.1f s", path, self.n_threads, self.load_seconds)

    def generate(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        config = config or GenerationConfig()
        if self.llm is None:
            raise LLMError("this llama.cpp backend was closed")
        if self.n_parallel > 1 and config.greedy:
            return self._generate_parallel(prompts, config)
        out = []
        for i, prompt in enumerate(prompts):
            try:
                res = self.llm.create_chat_completion(
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=int(config.max_new_tokens),
                    temperature=float(config.temperature),
                    repeat_penalty=1.0,  # plain greedy decoding, as the transformers backend does
                    stop=list(config.stop) or None,
                )
            except ValueError as e:  # e.g. "Requested tokens (...) exceed context window of ..."
                raise LLMError(
                    f"llama.cpp failed on prompt {i} of this batch ({len(prompt)} characters, n_ctx={self.n_ctx}): {e}"
                ) from e
            text = res["choices"][0]["message"].get("content") or ""
            out.append(truncate_at_stop(text, config.stop))
        return out

    def _generate_parallel(self, prompts: Sequence[str], config: GenerationConfig) -> list[str]:
        """Greedy answers decoded ``n_parallel`` at a time; the same prompt tokens, answer length limit
        and answer text as ``create_chat_completion``."""
        import llama_cpp

        if self.sequences is not None and self.sequences.n_seq != self.n_parallel:  # n_parallel was changed
            self.sequences.close()
            self.sequences = None
        if self.sequences is None or self.decoder is None:
            self.formatter = chat_formatter(self.llm)
            self.sequences = LlamaSequences(self.llm, self.n_parallel, self.n_ctx)
            self.decoder = ParallelDecoder(self.sequences)
        tokens = [chat_tokens(self.llm, self.formatter, p) for p in prompts]
        for i, ids in enumerate(tokens):
            if len(ids) >= self.n_ctx:
                raise LLMError(
                    f"llama.cpp failed on prompt {i} of this batch ({len(prompts[i])} characters, n_ctx={self.n_ctx}): "
                    f"its {len(ids)} tokens exceed the context window"
                )
        n_new = int(config.max_new_tokens)
        max_new = [n_new if n_new + len(ids) < self.n_ctx else self.n_ctx - len(ids) for ids in tokens]
        completions = Completions(self.llm, tokens, max_new, list(config.stop), self.n_ctx)
        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        answers, counts = self.decoder.answer(
            tokens, lambda t: bool(llama_cpp.llama_vocab_is_eog(vocab, t)), completions.complete
        )
        self.decode_counts.add(counts)
        return [truncate_at_stop(completions.text(i, a), config.stop) for i, a in enumerate(answers)]

    def close(self) -> None:
        sequences = getattr(self, "sequences", None)
        if sequences is not None:  # its context goes before the model it runs on
            sequences.close()
            self.sequences = self.decoder = None
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None
