"""Each stage of the builder (offline/pipeline.py) run alone on tiny inputs, without a real LLM or encoder."""

from __future__ import annotations

import numpy as np
import pytest

from llm4sbr_adapter.offline import BuildConfig, Catalogue, Perspective, SessionSet
from llm4sbr_adapter.offline.llm.base import LLMBackend
from llm4sbr_adapter.offline.pipeline import (
    LocalizedIntents,
    ask_llm,
    clean_answers,
    embed_catalogue,
    encode_texts,
    localize_intents,
    query_texts,
    read_inputs,
    render_prompts,
    store_metadata,
    with_session_means,
    write_intents,
)
from llm4sbr_adapter.store import IntentStore

LONG, LAST = Perspective("long", "long term"), Perspective("last", "now", last_n=1)


class HashEncoder:
    """A text encoder stand-in: a fixed random unit vector per distinct text; records what it was asked."""

    name, dim = "hash-encoder", 8

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def encode(self, texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False):
        self.asked.append(list(texts))
        rows = [np.random.default_rng(sum(map(ord, t))).normal(size=self.dim) for t in texts]
        out = np.asarray(rows, np.float32).reshape(len(texts), self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class EchoLLM(LLMBackend):
    model_id = "echo"

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, prompts, config):
        self.calls += len(prompts)
        return [p.splitlines()[-1] for p in prompts]


@pytest.fixture()
def tiny():
    sessions = SessionSet(ids=np.array([10, 11, 12]), sequences=[[1, 2], [3], [2, 9, 1]], source="s.tsv")
    catalogue = Catalogue(item_ids=np.array([1, 2, 3]), titles=["Apple", "Banana", "Cherry"], source="items.tsv")
    return sessions, catalogue


def test_read_inputs_takes_the_shard_and_refuses_a_top_f_above_the_catalogue(tiny):
    sessions, catalogue = tiny
    sess, cat = read_inputs(sessions, catalogue, BuildConfig(shard="1/3", top_f=3))
    assert sess.ids.tolist() == [11] and cat is catalogue
    with pytest.raises(ValueError, match=r"top_f=4 is larger than the catalogue items.tsv \(3 items\)"):
        read_inputs(sessions, catalogue, BuildConfig(top_f=4))


def test_read_inputs_reads_files_with_the_config_reader_settings(tmp_path):
    (tmp_path / "s.tsv").write_bytes(b"s1\t1 2\ns2\t\n")
    (tmp_path / "i.tsv").write_bytes("1\tCaf\xe9\n2\tTea\n".encode("latin-1"))
    config = BuildConfig(on_empty_session="skip", items_encoding="latin-1", top_f=1)
    sess, cat = read_inputs(tmp_path / "s.tsv", tmp_path / "i.tsv", config)
    assert sess.ids.tolist() == ["s1"] and cat.titles == ["Café", "Tea"]


def test_render_prompts_records_the_rows_each_prompt_shows(tiny):
    sessions, catalogue = tiny
    prompts = render_prompts(sessions, catalogue, [LONG, LAST], BuildConfig(on_missing_title="skip_item"))
    assert prompts.session_ids == [10, 11, 12] and len(prompts.flat()) == 6
    assert "1. Banana_2\n2. Apple_1" in prompts.texts["long"][2] and "9" not in prompts.texts["long"][2]
    assert prompts.shown_rows["long"] == [[0, 1], [2], [1, 0]]
    assert prompts.shown_rows["last"] == [[1], [2], [0]]
    assert prompts.labels()[3] == "session 10, perspective 'last'"
    idonly = render_prompts(sessions, catalogue, [LAST], BuildConfig(on_missing_title="id_only", max_items=2))
    assert idonly.shown_rows["last"][2] == [0] and idonly.texts["last"][2].count("Apple_1") == 1


def test_a_session_without_a_titled_item_is_not_rendered_nor_asked_under_skip_item(tiny, tmp_path):
    sessions, catalogue = tiny
    sessions = SessionSet(ids=np.array([10, 13]), sequences=[[1, 2], [8, 9]], source="s.tsv")
    prompts = render_prompts(sessions, catalogue, [LONG], BuildConfig(on_missing_title="skip_item"))
    assert prompts.untitled == {1} and prompts.texts["long"][1] is None and prompts.shown_rows["long"][1] == []
    assert prompts.asked() == [(0, prompts.texts["long"][0])]
    llm = EchoLLM()
    raw, asked, _ = ask_llm(llm, prompts, BuildConfig(progress=False), tmp_path / "c.sqlite3")
    assert llm.calls == 1 and asked == 1 and raw["long"][1] == ""
    assert clean_answers({"long": ["x", ""]}, [10, 13], "error", not_asked={1}) == {"long": ["x", ""]}
    with pytest.raises(ValueError, match="session 13"):
        clean_answers({"long": ["x", ""]}, [10, 13], "error")


def test_ask_llm_asks_each_prompt_once_and_reads_the_cache_after(tiny, tmp_path):
    sessions, catalogue = tiny
    prompts = render_prompts(sessions, catalogue, [LONG, LAST], BuildConfig(on_missing_title="skip_item"))
    llm = EchoLLM()
    raw, asked, cached = ask_llm(llm, prompts, BuildConfig(progress=False), tmp_path / "c.sqlite3")
    assert (asked, cached) == (len(set(prompts.flat())), 0) and list(raw) == ["long", "last"]
    assert raw["long"][0] == prompts.texts["long"][0].splitlines()[-1]
    again, asked, cached = ask_llm(EchoLLM(), prompts, BuildConfig(progress=False), tmp_path / "c.sqlite3")
    assert again == raw and (asked, cached) == (0, 6)


def test_clean_answers_and_the_one_raw_fallback():
    raw = {"long": ["Answer: Apple_1", '""', "  "]}
    cleaned = clean_answers(raw, [10, 11, 12], "session_mean")
    assert cleaned == {"long": ["Apple", "", ""]}
    assert query_texts(cleaned, raw, "session_mean") is cleaned
    assert query_texts(cleaned, raw, "raw") == {"long": ["Apple", '""', ""]}
    with pytest.raises(ValueError, match=r"session 11, perspective 'long': the LLM answer '\"\"' is empty"):
        clean_answers(raw, [10, 11, 12], "error")


def test_encode_texts_embeds_each_distinct_text_once_and_leaves_empty_rows_zero():
    encoder = HashEncoder()
    vectors = encode_texts(encoder, {"long": ["a", "", "b"], "last": ["b", "a", ""]})
    assert encoder.asked == [["a", "b"]]
    np.testing.assert_array_equal(vectors["long"][0], vectors["last"][1])
    assert not vectors["long"][1].any() and not vectors["last"][2].any()
    empty = encode_texts(encoder, {"long": ["", ""]})
    assert empty["long"].shape == (2, 8) and not empty["long"].any() and len(encoder.asked) == 1


def test_embed_catalogue_uses_its_cache(tiny, tmp_path):
    _, catalogue = tiny
    encoder = HashEncoder()
    first = embed_catalogue(encoder, catalogue, tmp_path)
    np.testing.assert_array_equal(embed_catalogue(encoder, catalogue, tmp_path), first)
    assert first.shape == (3, 8) and len(encoder.asked) == 1


def test_with_session_means_fills_only_answers_without_text():
    item_emb = np.eye(3, dtype=np.float32)
    vectors = {"long": np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]], np.float32)}
    queries = with_session_means(vectors, {"long": ["x", "", ""]}, {"long": [[0], [0, 1], []]}, item_emb)
    np.testing.assert_allclose(queries["long"], [[0, 0, 1], [2**-0.5, 2**-0.5, 0], [0, 0, 0]], atol=1e-7)
    assert not vectors["long"][1].any()  # the input is not changed


def test_localize_intents_snaps_to_the_catalogue_and_zeroes_empty_queries():
    item_emb = np.eye(3, dtype=np.float32)
    queries = {"long": np.array([[0, 0, 1], [0, 0, 0]], np.float32)}
    located = localize_intents(queries, item_emb, BuildConfig(top_f=2, softmax_temperature=0.01))
    assert located.top_items["long"][0, 0] == 2 and located.top_items["long"][1].tolist() == [-1, -1]
    np.testing.assert_allclose(located.intents["long"][0], [0, 0, 1], atol=1e-6)
    assert not located.intents["long"][1].any() and located.zero_intents == 1


def test_store_metadata_and_write_intents_give_a_store_that_opens(tiny, tmp_path):
    sessions, catalogue = tiny
    config = BuildConfig(top_f=1, shard="0/2")
    meta = store_metadata(config, [LONG], sessions, catalogue, llm="echo", encoder=HashEncoder(), shard="0/2")
    assert meta.extra["build_config"]["shard"] is None and BuildConfig.from_dict(meta.extra["build_config"]).top_f == 1
    located = LocalizedIntents(
        {"long": np.eye(3, 8, dtype=np.float32)}, {"long": np.array([[0], [1], [2]])}, {"long": np.ones((3, 1))}
    )
    answers = {"long": ["Apple", "", "Cherry"]}
    path = write_intents(tmp_path / "s.safetensors", sessions, catalogue, located, answers, answers, meta)
    store = IntentStore.open(path, perspectives=["long"], text_dim=8, num_sessions=3)
    assert store.explain(11)["long"]["top_items"] == [2] and store.metadata.shard == "0/2"
