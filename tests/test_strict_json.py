"""Issue 24, item 3: every JSON the package reads refuses duplicate keys (and NaN/Infinity); a replay file
with two answers for one prompt names both lines; saved weights keep their perspective order and finite
values."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from llm4sbr_adapter import strict_json
from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig
from llm4sbr_adapter.offline.inputs.catalogue import read_catalogue
from llm4sbr_adapter.offline.inputs.sessions import read_sessions
from llm4sbr_adapter.offline.llm.replay import ReplayBackend, ReplayFormatError, prompt_text_sha256
from llm4sbr_adapter.offline.prompts import load_perspectives
from llm4sbr_adapter.store import IntentStore, StoreError, StoreMetadata, write_store


def test_loads_refuses_duplicates_and_constants_with_a_position() -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        strict_json.loads('{"a": 1,\n "b": {"c": 2, "c": 3}}')
    assert info.value.msg == "duplicate key 'c'" and info.value.lineno == 2
    for constant in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(json.JSONDecodeError, match="is not a JSON number"):
            strict_json.loads(f'{{"x": {constant}}}')
    assert strict_json.loads('{"x": NaN}', allow_nan=True)["x"] != 0  # NaN kept where asked for
    assert strict_json.loads(b'{"a": [1, {"a": 2}]}') == {"a": [1, {"a": 2}]}  # same key in two objects is fine


def _store(path: Path) -> Path:
    meta = StoreMetadata(perspectives=["long"], text_dim=4, top_f=0)
    write_store(path, [1, 2], {"long": np.ones((2, 4), np.float32)}, meta)
    return path


def _rewrite_header(path: Path, edit) -> None:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    head = edit(raw[8 : 8 + n].decode("utf-8").rstrip())
    head_bytes = head.encode("utf-8")
    head_bytes += b" " * (-len(head_bytes) % 8)
    path.write_bytes(struct.pack("<Q", len(head_bytes)) + head_bytes + raw[8 + n :])


def test_store_header_with_a_duplicate_tensor_key_is_refused(tmp_path: Path) -> None:
    path = _store(tmp_path / "s.safetensors")

    def duplicate_tensor(head: str) -> str:
        obj = json.loads(head)
        first = next(k for k in obj if k != "__metadata__")
        return head[:-1] + f', "{first}": ' + json.dumps(obj[first]) + "}"

    _rewrite_header(path, duplicate_tensor)
    with pytest.raises(StoreError, match="duplicate key"):
        IntentStore.open(path)


def test_store_metadata_with_a_duplicate_field_is_refused(tmp_path: Path) -> None:
    path = _store(tmp_path / "s.safetensors")

    def duplicate_field(head: str) -> str:
        obj = json.loads(head)
        inner = obj["__metadata__"]["llm4sbr"]
        obj["__metadata__"]["llm4sbr"] = inner[:-1] + ', "text_dim": 8}'
        return json.dumps(obj)

    _rewrite_header(path, duplicate_field)
    with pytest.raises(StoreError, match="duplicate key 'text_dim'"):
        IntentStore.open(path)


def test_config_file_with_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = IntentEnhancerConfig(perspectives=("long", "short"), hidden_size=4, text_dim=4).save(tmp_path / "c.json")
    text = path.read_text()
    path.write_text(text.replace('"hidden_size": 4', '"hidden_size": 4, "hidden_size": 8'))
    with pytest.raises(ValueError, match="duplicate key 'hidden_size'"):
        IntentEnhancerConfig.load(path)


def test_jsonl_inputs_and_perspective_files_refuse_duplicates(tmp_path: Path) -> None:
    sessions = tmp_path / "s.jsonl"
    sessions.write_text('{"session_id": "a", "items": [1]}\n{"session_id": "b", "items": [1], "items": [2]}\n')
    with pytest.raises(ValueError, match=r"line 2: .*duplicate key 'items'"):
        read_sessions(sessions)
    items = tmp_path / "i.jsonl"
    items.write_text('{"item_id": 1, "title": "A", "title": "B"}\n')
    with pytest.raises(ValueError, match="duplicate key 'title'"):
        read_catalogue(items)
    persp = tmp_path / "p.json"
    persp.write_text('[{"name": "long", "qualifier": "long term", "name": "short"}]')
    with pytest.raises(ValueError, match="duplicate key 'name'"):
        load_perspectives(persp)


def test_replay_two_different_answers_name_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    sha = prompt_text_sha256("p1")
    lines = [
        {"prompt": "p1", "answer": "Apple"},
        {"prompt": "p2", "answer": "Pear"},
        {"prompt_sha256": sha, "answer": "Apple"},  # the same answer again: fine
        {"prompt_sha256": sha, "answer": "Banana"},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(ReplayFormatError, match=r"answers.jsonl:4: a second, different answer .* on line 1"):
        ReplayBackend(path)
    path.write_text('{"prompt": "p1", "answer": "A", "answer": "B"}\n')
    with pytest.raises(ReplayFormatError, match=r":1: not valid JSON \(duplicate key 'answer'\)"):
        ReplayBackend(path)


def _saved_enhancer(tmp_path: Path, **kw) -> Path:
    torch.manual_seed(0)
    config = IntentEnhancerConfig(perspectives=("long", "short"), hidden_size=4, text_dim=6, fusion="concat", **kw)
    return IntentEnhancer(config).save_pretrained(tmp_path / "enh")


def test_from_pretrained_refuses_a_reordered_config(tmp_path: Path) -> None:
    folder = _saved_enhancer(tmp_path)
    IntentEnhancer.from_pretrained(folder)  # as saved: loads
    config_path = folder / "enhancer_config.json"
    saved = json.loads(config_path.read_text())
    saved["perspectives"] = ["short", "long"]
    config_path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"lists perspectives \['short', 'long'\] but the weights were trained with"):
        IntentEnhancer.from_pretrained(folder)


def test_from_pretrained_refuses_nan_or_inf_weights(tmp_path: Path) -> None:
    folder = _saved_enhancer(tmp_path)
    weights = folder / "enhancer.safetensors"
    with safe_open(str(weights), framework="pt") as handle:
        meta = handle.metadata()
    state = load_file(str(weights))
    name = sorted(state)[0]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("inf")
    save_file(state, str(weights), metadata=meta)
    with pytest.raises(ValueError, match=rf"{name} holds NaN or infinity"):
        IntentEnhancer.from_pretrained(folder)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x80{}", "not valid JSON"),  # not UTF-8 (found by tests/test_fuzz_inputs.py)
        (b'{"format": "llm4sbr-intent-enhancer", "format_version": null}', "format_version must be a positive"),
        (b'{"format": "llm4sbr-intent-enhancer", "format_version": "1"}', "format_version must be a positive"),
    ],
)
def test_config_loader_errors_are_clean(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=needle):
        IntentEnhancerConfig.load(path)
