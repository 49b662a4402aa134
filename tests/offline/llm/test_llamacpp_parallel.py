"""Parallel decoding through llama.cpp itself, on a tiny random model written here (2 layers, float32,
a byte-level vocabulary): answers decoded several prompts at once must be the one-at-a-time answers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from llm4sbr_adapter.offline.llm import GenerationConfig, make_backend

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
)

EMBED, HEADS, KV_HEADS, FFN, LAYERS = 32, 4, 2, 64, 2
TEMPLATE = "{% for m in messages %}<s>user {{ m['content'] }}</s>{% endfor %}<s>assistant"


def write_tiny_gguf(path) -> None:
    import gguf

    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["▁a", "▁b", "▁the", "▁item"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * 4
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(512)
    w.add_embedding_length(EMBED)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(EMBED // HEADS)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 3 + [-1000.0] * 256 + [-1.0] * 4)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)
    w.add_chat_template(TEMPLATE)
    rng = np.random.default_rng(0)

    def weight(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)

    kv = EMBED // HEADS * KV_HEADS
    w.add_tensor("token_embd.weight", weight(len(tokens), EMBED))
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(EMBED, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", weight(EMBED, EMBED))
        w.add_tensor(f"blk.{i}.attn_k.weight", weight(kv, EMBED))
        w.add_tensor(f"blk.{i}.attn_v.weight", weight(kv, EMBED))
        w.add_tensor(f"blk.{i}.attn_output.weight", weight(EMBED, EMBED))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(EMBED, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", weight(FFN, EMBED))
        w.add_tensor(f"blk.{i}.ffn_up.weight", weight(FFN, EMBED))
        w.add_tensor(f"blk.{i}.ffn_down.weight", weight(EMBED, FFN))
    w.add_tensor("output_norm.weight", np.ones(EMBED, dtype=np.float32))
    w.add_tensor("output.weight", 4 * weight(len(tokens), EMBED))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def tiny_backend(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.gguf"
    write_tiny_gguf(path)
    backend = make_backend(f"llamacpp:{path}", n_threads=1, n_ctx=256, model_id="tiny")
    yield backend
    backend.close()


PROMPTS = sorted(
    f"A user bought:\n{listing}\nName the {view} item."
    for listing in ("1. a\n2. b", "1. a\n2. b\n3. the")
    for view in ("next", "last")
) + ["the item", "b"]


def test_parallel_answers_equal_one_at_a_time(tiny_backend):
    cfg = GenerationConfig(max_new_tokens=12)
    tiny_backend.n_parallel = 1
    one = tiny_backend.generate(PROMPTS, cfg)
    tiny_backend.n_parallel = 3
    batched = tiny_backend.generate(PROMPTS, cfg)
    assert any(one) and batched == one
    counts = tiny_backend.decode_counts
    assert counts.copies > 0  # the perspectives shared their listing
    assert counts.calls < counts.prompt + counts.answer  # several tokens per decode call


def test_stop_strings_and_length_limits_cut_as_one_at_a_time(tiny_backend):
    cfg = GenerationConfig(max_new_tokens=20, stop=("a", "b"))
    tiny_backend.n_parallel = 1
    one = tiny_backend.generate(PROMPTS, cfg)
    tiny_backend.n_parallel = 2
    assert tiny_backend.generate(PROMPTS, cfg) == one


def test_the_build_setting_reaches_a_llamacpp_backend_only(tmp_path, caplog):
    from llm4sbr_adapter.offline.stages.answer import resolve_llm

    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path)
    backend, owned = resolve_llm(f"llamacpp:{path}", "cpu", threads=1, parallel=4)
    try:
        assert owned and backend.n_parallel == 4
    finally:
        backend.close()
    with caplog.at_level("WARNING"):
        replay = tmp_path / "answers.jsonl"
        replay.write_text("")
        resolve_llm(f"replay:{replay}", "cpu", parallel=4)
    assert "llm_parallel=4 is ignored" in caplog.text
