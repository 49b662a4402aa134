"""Old import paths: one alias table, the very same modules, a warning naming the release that drops them;
and training's imports never load stage one."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from llm4sbr_adapter import _deprecated_alias

OLD_NAMES = sorted(_deprecated_alias.ALIASES)


def _forget(old: str) -> None:
    for name in [m for m in sys.modules if m == old or m.startswith(old + ".")]:
        del sys.modules[name]


@pytest.mark.parametrize(
    ("old", "new", "sub"),
    [
        ("llm4sbr_adapter.build", "llm4sbr_adapter.offline", "pipeline"),
        ("llm4sbr_adapter.build", "llm4sbr_adapter.offline", "llm.cache"),
        ("llm4sbr_adapter.models", "llm4sbr_adapter.hiphop", "neighbours"),
    ],
)
def test_old_path_is_the_new_module(old, new, sub):
    _forget(old)
    with pytest.warns(DeprecationWarning, match=rf"renamed {new}\.{sub}; .* goes away in release 0\.3\.0"):
        old_module = importlib.import_module(f"{old}.{sub}")
    new_module = importlib.import_module(f"{new}.{sub}")
    assert old_module is new_module and new_module.__spec__.name == f"{new}.{sub}"  # its own spec, kept


@pytest.mark.parametrize("old", OLD_NAMES)
def test_every_alias_names_its_removal_and_serves_the_public_names(old):
    new, removed_in = _deprecated_alias.ALIASES[old]
    assert removed_in.count(".") == 2
    _forget(old)
    with pytest.warns(DeprecationWarning, match=rf"goes away in release {removed_in}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert all(hasattr(module, name) for name in getattr(module, "__all__", ()))


def test_old_session_reader_path_keeps_its_names():
    _forget("llm4sbr_adapter.offline.sessions")
    with pytest.warns(DeprecationWarning):
        from llm4sbr_adapter.offline.sessions import read_sessions, read_text
    from llm4sbr_adapter.offline.inputs.sessions import read_sessions as real
    from llm4sbr_adapter.offline.inputs.text import read_text as real_text

    assert read_sessions is real and read_text is real_text


def test_no_module_sits_at_an_old_path():
    for old in OLD_NAMES:
        new = _deprecated_alias.ALIASES[old][0]
        spec = importlib.util.find_spec(new)
        assert spec is not None and spec.name == new
        parent, _, leaf = old.rpartition(".")
        folder = Path(importlib.import_module(parent).__path__[0])
        assert not (folder / f"{leaf}.py").exists() and not (folder / leaf / "__init__.py").exists()


@pytest.mark.parametrize(
    "imports",
    [
        "import llm4sbr_adapter; from llm4sbr_adapter import IntentEnhancer, IntentSource, IntentStore",
        "import llm4sbr_adapter.experiments.training.train",  # the training command
    ],
)
def test_training_imports_load_no_module_of_stage_one(imports):
    code = f"import json, sys; {imports}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert "llm4sbr_adapter.enhancer" in loaded
    assert not [m for m in loaded if m.startswith("llm4sbr_adapter.offline")], loaded


def test_stage_one_names_load_on_first_use():
    import llm4sbr_adapter
    from llm4sbr_adapter.offline import BuildConfig, build_intent_store

    assert llm4sbr_adapter.BuildConfig is BuildConfig and llm4sbr_adapter.build_intent_store is build_intent_store
    assert "TextEncoder" in dir(llm4sbr_adapter)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        llm4sbr_adapter.nothing  # noqa: B018
