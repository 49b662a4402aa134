"""The public names and extension points are importable from where the docs say."""

import inspect

import llm4sbr_adapter
from llm4sbr_adapter import offline


def test_top_level_names_resolve():
    for name in llm4sbr_adapter.__all__:
        assert getattr(llm4sbr_adapter, name) is not None, name


def test_extension_points_are_exported_from_offline():
    for name in ("LLMBackend", "TextEncoder", "read_sessions", "read_click_log", "read_movielens", "read_catalogue"):
        assert name in offline.__all__, name
    assert inspect.isabstract(offline.LLMBackend)
    assert llm4sbr_adapter.LLMBackend is offline.LLMBackend and llm4sbr_adapter.TextEncoder is offline.TextEncoder


def test_every_exception_shares_the_root():
    assert issubclass(llm4sbr_adapter.StoreError, llm4sbr_adapter.Llm4sbrError)
    assert issubclass(offline.InputFormatError, llm4sbr_adapter.Llm4sbrError)
