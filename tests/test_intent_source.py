"""IntentSource: a store bound to one split hands tensors to an enhancer that holds no data and keeps its config."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch

from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig
from llm4sbr_adapter.intent_source import IntentSource
from llm4sbr_adapter.store import IntentStore, StoreMetadata, StoreMismatchError, write_store

H, T = 8, 6


@pytest.fixture
def store(tmp_path) -> IntentStore:
    rng = np.random.default_rng(0)
    intents = {p: rng.standard_normal((4, T)).astype(np.float32) for p in ("long", "short")}
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=T, text_encoder="enc-a", sessions_sha256="a" * 64)
    return IntentStore.open(write_store(tmp_path / "s.safetensors", [10, 11, 12, 13], intents, meta))


def enhancer(**kw) -> IntentEnhancer:
    torch.manual_seed(0)
    return IntentEnhancer(IntentEnhancerConfig(hidden_size=H, text_dim=T, **kw))


def test_source_lookup_feeds_the_enhancer_like_session_ids(store):
    enh = enhancer(missing="learned")
    source = IntentSource(store, missing="zeros")
    enh.use_source(source)
    h_local, h_global = torch.randn(3, H), torch.randn(3, H)
    intents, found = source.lookup([10, 99, 13], perspectives=["long", "short"], like=h_local)
    assert found.tolist() == [True, False, True] and float(intents["long"][1].abs().sum()) == 0.0
    by_ids = enh(h_local, h_global, session_ids=[10, 99, 13])
    looked_up, _ = enh.lookup([10, 99, 13], h_local)  # the learned vector fills the absent row
    torch.testing.assert_close(by_ids.session, enh(h_local, h_global, intents=looked_up).session)
    with pytest.raises(KeyError, match="99"):
        IntentSource(store).lookup([99], perspectives=["long"], like=h_local[:1])


def test_constructor_takes_a_source_or_a_store_and_never_changes_the_config(store):
    config = IntentEnhancerConfig(hidden_size=H, text_dim=T)
    before = config.to_dict()
    a = IntentEnhancer(config, source=IntentSource(store))
    b = IntentEnhancer(config, store=store)
    assert a.store is b.store is store and config.to_dict() == before
    assert a.saved_config().text_encoder == "enc-a" and a.config is config
    with pytest.raises(ValueError, match="not both"):
        IntentEnhancer(config, source=IntentSource(store), store=store)


def test_a_source_whose_missing_policy_disagrees_with_the_config_is_refused(store):
    with pytest.raises(ValueError, match=r"missing='learned' needs an IntentSource with missing='zeros'"):
        enhancer(missing="learned").use_source(IntentSource(store))
    with pytest.raises(ValueError, match=r"missing='raise' needs an IntentSource with missing='raise'"):
        enhancer().use_source(IntentSource(store, missing="zeros"))
    with pytest.raises(ValueError, match="missing must be one of"):
        IntentSource(store, missing="learned")


def test_provenance_checks_live_in_the_source(store, tmp_path):
    source = IntentSource.open(store.path, sessions_sha256="a" * 64)
    source.check_sessions_file("a" * 64)
    with pytest.raises(StoreMismatchError, match=r"session ids refer to valid.txt \(sessions_sha256 bbbbbbbbbbbb\)"):
        source.check_sessions_file("b" * 64, "valid.txt")
    with pytest.raises(StoreMismatchError, match="text_dim"):
        source.check_fits(["long"], T + 1)
    with pytest.raises(StoreMismatchError, match="text_encoder"):
        source.check_fits(["long"], T, text_encoder="enc-b")
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=T, text_encoder="enc-b")
    other = write_store(
        tmp_path / "o.safetensors", [1], {p: np.ones((1, T), np.float32) for p in ("long", "short")}, meta
    )
    with pytest.raises(StoreMismatchError, match="its intents come from another text encoder"):
        IntentSource.open(other).identity.check_same_origin(source.identity)


def test_copies_share_the_source_and_pickles_drop_it(store):
    source = IntentSource(store)
    assert copy.deepcopy(source) is source
    assert pickle.loads(pickle.dumps(source)) is None
    enh = enhancer()
    enh.use_source(source)
    assert copy.deepcopy(enh).source is source
    buf = io.BytesIO()
    torch.save(enh, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=False).source is None
