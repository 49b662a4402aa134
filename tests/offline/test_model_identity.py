"""Model identity by content (issue 15): a model with other weights of the same size is another model.

Cache keys (``model_id``), the default model's check and the text encoder's name all come from a
sha256 over the weight files, computed once and stamped by (path, mtime, size).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

from llm4sbr_adapter.offline.llm import default_model as dm


def _touch_later(path: Path) -> None:
    """Give ``path`` an mtime one second later than it has (as an in-place rewrite would)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _fake_hf_folder(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 8}))
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_stamped_sha256_hashes_once_and_again_when_the_file_changes(tmp_path, monkeypatch):
    from llm4sbr_adapter.offline import model_hash

    calls: list[Path] = []
    real = model_hash.sha256_file
    monkeypatch.setattr(model_hash, "sha256_file", lambda p: calls.append(Path(p)) or real(p))
    stamps = tmp_path / "stamps.json"
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights-v1")
    assert model_hash.stamped_sha256(f, stamps) == hashlib.sha256(b"weights-v1").hexdigest()
    assert model_hash.stamped_sha256(f, stamps) == hashlib.sha256(b"weights-v1").hexdigest()
    assert len(calls) == 1, "an unchanged file was hashed again"
    f.write_bytes(b"weights-v2")  # same size, new content
    _touch_later(f)
    assert model_hash.stamped_sha256(f, stamps) == hashlib.sha256(b"weights-v2").hexdigest()
    assert len(calls) == 2
    stamps.write_text("{not json")  # a damaged stamp file only costs a re-hash
    assert model_hash.stamped_sha256(f, stamps) == hashlib.sha256(b"weights-v2").hexdigest()


def test_transformers_model_id_follows_the_weights_not_their_size(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4SBR_CACHE", str(tmp_path / "cache"))  # the stamps go there
    from llm4sbr_adapter.offline.llm.transformers_backend import TransformersBackend

    a = _fake_hf_folder(tmp_path / "a" / "my-model", b"\x01" * 64)
    b = _fake_hf_folder(tmp_path / "b" / "my-model", b"\x02" * 64)  # fine-tuned: same name, same size
    same = _fake_hf_folder(tmp_path / "c" / "my-model", b"\x01" * 64)
    ids = [TransformersBackend(p, lazy=True).model_id for p in (a, b, same)]
    assert ids[0] != ids[1], "a fine-tuned model of the same size would reuse the cached answers"
    assert ids[0] == ids[2], "a copy of the same weights is the same model"
    ga, gb = tmp_path / "a" / "m.gguf", tmp_path / "b" / "m.gguf"
    ga.write_bytes(b"GGUF" + b"\x01" * 60)
    gb.write_bytes(b"GGUF" + b"\x02" * 60)
    assert TransformersBackend(ga, lazy=True).model_id != TransformersBackend(gb, lazy=True).model_id
    assert hashlib.sha256(ga.read_bytes()).hexdigest() in TransformersBackend(ga, lazy=True).model_id


def test_llamacpp_model_id_follows_the_weights(tmp_path, monkeypatch):
    from llm4sbr_adapter.offline.llm.llamacpp_backend import LlamaCppBackend

    class FakeLlama:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    monkeypatch.setitem(sys.modules, "llama_cpp", SimpleNamespace(Llama=FakeLlama))
    monkeypatch.setenv("LLM4SBR_CACHE", str(tmp_path / "cache"))
    ga, gb = tmp_path / "a" / "m.gguf", tmp_path / "b" / "m.gguf"
    for path, byte in ((ga, b"\x01"), (gb, b"\x02")):
        path.parent.mkdir()
        path.write_bytes(b"GGUF" + byte * 60)
    assert LlamaCppBackend(ga).model_id != LlamaCppBackend(gb).model_id


def test_default_llm_of_the_right_size_but_other_content_is_joined_again(tmp_path, monkeypatch):
    parts = [b"alpha-" * 100, b"omega"]
    whole = b"".join(parts)
    pkg_root = tmp_path / "site"
    chunks = []
    for k, data in enumerate(parts, 1):
        mod = f"llm4sbr_identity_chunk_{uuid.uuid4().hex}_{k}"
        (pkg_root / mod / "data").mkdir(parents=True)
        (pkg_root / mod / "__init__.py").write_text("")
        (pkg_root / mod / "data" / f"part{k:02d}.bin").write_bytes(data)
        chunks.append((f"identity-part{k}", mod, f"data/part{k:02d}.bin"))
    monkeypatch.syspath_prepend(str(pkg_root))
    monkeypatch.setattr(dm, "CHUNKS", chunks)
    monkeypatch.setattr(dm, "DEFAULT_LLM_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(dm, "DEFAULT_LLM_SIZE", len(whole))
    path = dm.default_llm_path(tmp_path / "cache")
    assert path.read_bytes() == whole
    path.write_bytes(b"X" * len(whole))  # replaced in place, same size: the stamp must not vouch for it
    _touch_later(path)
    assert dm.default_llm_path(tmp_path / "cache") == path
    assert path.read_bytes() == whole, "a same-size file with other content was trusted"


def _fake_gguf_conversion(monkeypatch) -> list[Path]:
    """Swap transformers' GGUF reader and the folder writer/reader of TransformersBackend for fakes that
    only record conversions and write the converted folder's stamp (no model is built)."""
    import transformers

    from llm4sbr_adapter.offline.llm import transformers_backend as tb

    conversions: list[Path] = []

    def fake_tokenizer(path, *a, gguf_file=None, **kw):
        assert gguf_file is not None, "the converted folder is read by _load_folder (faked)"
        return SimpleNamespace()

    def fake_model(path, *a, gguf_file=None, **kw):
        assert gguf_file is not None, "the converted folder is read by _load_folder (faked)"
        conversions.append(Path(path) / gguf_file)
        return SimpleNamespace(to=lambda *a, **kw: None)  # the backend rounds the weights to float16

    def fake_save(tok, model, converted: Path, source: dict) -> None:
        converted.mkdir(exist_ok=True)
        (converted / tb._CONVERTED_STAMP).write_text(json.dumps(source))

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake_tokenizer)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_model)
    monkeypatch.setattr(tb.TransformersBackend, "_save_converted", staticmethod(fake_save))
    monkeypatch.setattr(tb.TransformersBackend, "_load_folder", lambda self, folder: ("tok", "model"))
    return conversions


def test_gguf_conversion_is_redone_for_a_same_name_same_size_gguf_with_other_bytes(tmp_path, monkeypatch):
    """The converted folder is stamped by the GGUF's content sha256, not by its name, size and mtime."""
    import shutil

    from llm4sbr_adapter.offline.llm.transformers_backend import TransformersBackend

    monkeypatch.setenv("LLM4SBR_CACHE", str(tmp_path / "cache"))
    conversions = _fake_gguf_conversion(monkeypatch)

    def load(gguf: Path) -> str:
        return TransformersBackend(gguf, lazy=True)._load_gguf(gguf, True)[2]

    gguf = tmp_path / "a" / "model.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + b"\x01" * 60)
    assert load(gguf) == "gguf" and conversions == [gguf]
    assert load(gguf).startswith("converted cache") and len(conversions) == 1
    _touch_later(gguf)  # same bytes, new mtime: the conversion still holds
    assert load(gguf).startswith("converted cache") and len(conversions) == 1

    # The model folder is copied elsewhere with its mtimes (cp -a, rsync -a) and its GGUF replaced by a
    # fine-tuned file of the same name and size, which kept the old file's mtime.
    other = tmp_path / "b" / "model.gguf"
    shutil.copytree(gguf.parent, other.parent)
    st = other.stat()
    other.write_bytes(b"GGUF" + b"\x02" * 60)
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert load(other) == "gguf", "a converted folder of other weights was reused"
    assert conversions == [gguf, other]
    assert load(other).startswith("converted cache") and len(conversions) == 2
    assert load(gguf).startswith("converted cache") and len(conversions) == 2  # the original is untouched
