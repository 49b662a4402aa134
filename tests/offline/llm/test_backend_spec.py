"""LLM specs are parsed in one place (BackendSpec.parse), for make_backend and for a build alike."""

from __future__ import annotations

import logging
import sys
import textwrap

import pytest

from llm4sbr_adapter.offline.llm.base import LLMBackend
from llm4sbr_adapter.offline.llm.default_model import BackendSpec, make_backend
from llm4sbr_adapter.offline.stages.answer import resolve_llm


@pytest.mark.parametrize(
    ("spec", "kind", "target"),
    [
        ("default", "default", ""),
        ("default:int8", "default", "int8"),
        ("hf:/models/qwen", "hf", "/models/qwen"),
        ("llamacpp:default", "llamacpp", "default"),
        ("openai:http://h:8000/v1#Qwen/Qwen2.5", "openai", "http://h:8000/v1#Qwen/Qwen2.5"),
        ("replay:answers.jsonl", "replay", "answers.jsonl"),
        (" py:mod:make ", "py", "mod:make"),
    ],
)
def test_every_spec_form_parses(spec, kind, target):
    parsed = BackendSpec.parse(spec)
    assert (parsed.kind, parsed.target) == (kind, target)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", "unknown LLM spec"),
        ("gpt:4", "unknown LLM spec"),
        ("hf:", "unknown LLM spec"),
        ("openai:http://alice:pw@h/v1", "lacks the model name"),
        ("py:onlymodule", "expected py:MODULE:FACTORY"),
    ],
)
def test_bad_specs_are_refused_by_the_parser_for_both_callers(spec, message):
    for call in (lambda: make_backend(spec), lambda: resolve_llm(spec, "cpu")):
        with pytest.raises(ValueError, match=message) as err:
            call()
        assert "pw" not in str(err.value)  # URL credentials never reach a message


def test_build_options_per_kind(caplog):
    options = {"device": "cuda:0", "batch_size": 4, "threads": 3, "request_timeout": None, "parallel": 1}
    assert BackendSpec.parse("hf:x").build_options(**options) == {"device": "cuda:0", "batch_size": 4, "lazy": True}
    assert BackendSpec.parse("llamacpp:x.gguf").build_options(**{**options, "parallel": 8}) == {
        "n_gpu_layers": -1,
        "n_threads": 3,
        "n_parallel": 8,
    }
    assert BackendSpec.parse("openai:http://h/v1#m").build_options(**{**options, "request_timeout": 5}) == {
        "timeout": 5.0
    }
    with caplog.at_level(logging.WARNING):
        assert BackendSpec.parse("replay:a.jsonl").build_options(**{**options, "request_timeout": 5}) == {}
    assert "request_timeout=5 is ignored" in caplog.text


def test_a_python_factory_spec_goes_through_make_backend(tmp_path, monkeypatch):
    (tmp_path / "factory_mod.py").write_text(
        textwrap.dedent(
            """
            from llm4sbr_adapter.offline.llm.base import LLMBackend

            class Echo(LLMBackend):
                model_id = "echo"

                def generate(self, prompts, config):
                    return list(prompts)

            def make():
                return Echo()

            def wrong():
                return 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    backend, owned = resolve_llm("py:factory_mod:make", "cpu")
    assert isinstance(backend, LLMBackend) and backend.model_id == "echo" and owned
    with pytest.raises(TypeError, match="factory returned int, not an LLMBackend"):
        make_backend("py:factory_mod:wrong")
    sys.modules.pop("factory_mod", None)
