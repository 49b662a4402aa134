"""A llama.cpp context holding several sequences, driven through llama-cpp-python's low-level API.

:class:`LlamaSequences` is the :class:`~.parallel_decode.SequenceContext` of the llama.cpp backend: a
second context on the model the backend's ``Llama`` object has loaded (the weights are shared, only the
key/value memory is new), with one sequence per prompt in flight. Each sequence has a key/value stream of
its own (``kv_unified`` off), laid out as if it were the only one, and a copy between sequences copies
the whole stream.

:func:`chat_tokens` turns a user message into the prompt tokens exactly as ``Llama.create_chat_completion``
does for a GGUF that carries its chat template.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from .base import LLMError

__all__ = ["Completions", "LlamaSequences", "chat_formatter", "chat_tokens"]

#: the chat format ``Llama`` picks when the GGUF's own template is used (see ``llama_cpp.Llama.__init__``)
GGUF_TEMPLATE_FORMAT = "chat_template.default"


def chat_formatter(llm: Any) -> Any:
    """The Jinja2 formatter ``Llama`` builds from the GGUF's ``tokenizer.chat_template``."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    if llm.chat_handler is not None or llm.chat_format != GGUF_TEMPLATE_FORMAT:
        raise LLMError(
            f"parallel decoding renders prompts with the GGUF's own chat template; this model uses chat format "
            f"{llm.chat_format!r} (set llm_parallel to 1)"
        )
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    eos, bos = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=_token_text(vocab, eos),
        bos_token=_token_text(vocab, bos),
        stop_token_ids=[eos],
    )


def _token_text(vocab: Any, token: int) -> str:
    import llama_cpp

    return llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8") if token != -1 else ""


def chat_tokens(llm: Any, formatter: Any, prompt: str) -> list[int]:
    """The tokens ``create_chat_completion`` evaluates for the user message ``prompt``."""
    result = formatter(messages=[{"role": "user", "content": prompt}])
    return list(llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True))


class Completions:
    """When an answer is complete, and its text, as ``Llama.create_completion`` decides for greedy answers.

    After each token it detokenizes the answer (after the prompt's tokens); while the last bytes open a
    UTF-8 character that is not finished yet, it checks neither the stop strings nor the length limit
    (so an answer can exceed ``max_new``); otherwise the answer ends at a stop string or at ``max_new``
    tokens. Its text is cut before the earliest stop string and decoded leaving out broken characters.

    Args:
        llm: the ``llama_cpp.Llama`` whose tokenizer detokenizes.
        prompts: each prompt's tokens.
        max_new: each answer's token limit.
        stop: stop strings.
        n_ctx: tokens a sequence holds at most (a last bound on an unfinished character).
    """

    def __init__(self, llm: Any, prompts: list[list[int]], max_new: list[int], stop: list[str], n_ctx: int) -> None:
        self.llm, self.prompts, self.max_new, self.n_ctx = llm, prompts, max_new, n_ctx
        self.stop = [s.encode("utf-8") for s in stop if s]
        self.unfinished = [0] * len(prompts)  # tokens still to take before checking again (llama-cpp-python's
        # ``multibyte_fix``)

    def _bytes(self, i: int, answer: list[int]) -> bytes:
        return bytes(self.llm.detokenize(answer, prev_tokens=self.prompts[i]))

    def complete(self, i: int, answer: list[int]) -> bool:
        text = self._bytes(i, answer)
        for back, byte in _last_bytes(text):
            for width, lead in ((2, 0xC0), (3, 0xE0), (4, 0xF0)):
                if width > back and byte & lead == lead:
                    self.unfinished[i] = width - back
        if self.unfinished[i] > 0:
            self.unfinished[i] -= 1
            return len(self.prompts[i]) + len(answer) >= self.n_ctx
        return any(s in text for s in self.stop) or len(answer) >= self.max_new[i]

    def text(self, i: int, answer: list[int]) -> str:
        text = self._bytes(i, answer)
        cuts = [text.find(s) for s in self.stop if s in text]
        return (text[: min(cuts)] if cuts else text).decode("utf-8", errors="ignore")


def _last_bytes(text: bytes) -> list[tuple[int, int]]:
    """(k, byte) for the last three bytes, as llama-cpp-python numbers them: ``k = 3 - index`` in
    ``text[-3:]`` (3 for its first byte, whatever the text's length)."""
    return [(3 - index, byte) for index, byte in enumerate(text[-3:])]


class LlamaSequences:
    """``n_seq`` sequences in a new context on ``llm``'s model.

    Args:
        llm: a loaded ``llama_cpp.Llama``; the new context takes its context settings (threads, batch).
        n_seq: prompts in flight at once.
        n_ctx: tokens each sequence may hold (prompt and answer).
    """

    def __init__(self, llm: Any, n_seq: int, n_ctx: int) -> None:
        import llama_cpp

        self._lib = llama_cpp
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_seq_max = n_seq
        params.n_ctx = n_ctx * n_seq
        params.kv_unified = False
        self.ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not self.ctx:
            raise LLMError(f"llama.cpp cannot make a context for {n_seq} sequences of {n_ctx} tokens")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_seq = int(n_seq)
        self.n_batch = int(llama_cpp.llama_n_batch(self.ctx))
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(llm.model)))
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)

    def forget(self, seq: int, start: int = 0) -> None:
        self._lib.llama_memory_seq_rm(self.memory, seq, start, -1)

    def copy(self, src: int, dst: int) -> None:
        self._lib.llama_memory_seq_cp(self.memory, src, dst, -1, -1)

    def decode(self, tokens: list[int], positions: list[int], seqs: list[int], wanted: list[bool]) -> list[int]:
        batch = self.batch
        batch.n_tokens = len(tokens)
        for i, (token, pos, seq, want) in enumerate(zip(tokens, positions, seqs, wanted, strict=True)):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, want
            batch.seq_id[i][0] = seq
        rc = self._lib.llama_decode(self.ctx, batch)
        if rc != 0:
            raise LLMError(f"llama_decode returned {rc} on a batch of {len(tokens)} tokens")
        out = []
        for i, want in enumerate(wanted):
            if want:
                row = self._lib.llama_get_logits_ith(self.ctx, i)
                logits = np.ctypeslib.as_array(ctypes.cast(row, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))
                out.append(int(logits.argmax()))  # the first of equal maxima, as llama.cpp's greedy sampler
        return out

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self._lib.llama_batch_free(self.batch)
            self._lib.llama_free(self.ctx)
            self.ctx = None
