"""The prompt variants of issue 22: 'unseen' presets, candidate lists from transitions, and snapping that
keeps a session's own items out of its top f."""

from __future__ import annotations

import numpy as np
import pytest

from llm4sbr_adapter.offline import BuildConfig, Catalogue, SessionSet
from llm4sbr_adapter.offline.candidates import CandidateError, TransitionCandidates
from llm4sbr_adapter.offline.localize import ItemLocalizer
from llm4sbr_adapter.offline.pipeline import localize_intents, own_rows, render_prompts
from llm4sbr_adapter.offline.prompts import (
    CANDIDATES_TEMPLATE,
    UNSEEN_TEMPLATE,
    PromptError,
    named_perspectives,
    render_prompt,
)


def _file(seqs, targets, sha="train-sha"):
    return SessionSet(ids=np.arange(len(seqs)), sequences=seqs, targets=targets, source="train.txt", sha256=sha)


def test_transition_candidates_by_hand():
    # row 0: a b -> e   votes a->b 1, a->e 1/2, b->e 1
    # row 1: b c -> d   votes b->c 1, b->d 1/2, c->d 1
    train = TransitionCandidates(_file([["a", "b"], ["b", "c"]], ["e", "d"]))
    # another file's session [a, b]: recency weights b 1, a 1/2
    # e: 1 * 1 + 1/2 * 1/2 = 1.25; c: 1 * 1 = 1; d: 1 * 1/2 = 0.5; b is the session's own item
    other = SessionSet(ids=np.array([7]), sequences=[["a", "b"]], source="valid.txt", sha256="valid-sha")
    assert train.candidates(other, 5) == [["e", "c", "d"]]
    assert train.candidates(other, 2) == [["e", "c"]]
    # the training rows themselves: each row's own votes (and so its own target) are left out
    # row 0 [a, b] keeps only row 1's votes: c 1, d 0.5 (e, its target, is gone)
    # row 1 [b, c] keeps only row 0's votes: b->e 1 * 1/2 (b is 2nd from the end) = 0.5; c->? none
    same = SessionSet(ids=np.arange(2), sequences=[["a", "b"], ["b", "c"]], source="train.txt", sha256="train-sha")
    assert train.candidates(same, 5) == [["c", "d"], ["e"]]


def test_prefix_augmented_candidate_files_are_refused():
    rows = [["a"], ["a", "b"], ["a", "b", "c"], ["x", "y"]]
    with pytest.raises(CandidateError, match="continue another row"):
        TransitionCandidates(_file(rows, ["b", "c", "d", "z"]))


def test_presets_and_rendering():
    long, short = named_perspectives("long_unseen,short_unseen")
    assert (long.name, short.name, long.template) == ("long", "short", UNSEEN_TEMPLATE)
    lc, _ = named_perspectives("long_candidates,short_candidates")
    text = render_prompt(lc, ["A_1", "B_2"], candidates=["C_3", "D_4"])
    assert "1. A_1\n2. B_2" in text and "- C_3\n- D_4" in text and lc.template == CANDIDATES_TEMPLATE
    with pytest.raises(PromptError, match="none were given"):
        render_prompt(lc, ["A_1"])


def test_render_prompts_lists_candidates_from_the_candidate_file(tmp_path):
    (tmp_path / "train.tsv").write_text("t1\t1 2 3\nt2\t2 4\n", encoding="utf-8")
    sessions = SessionSet(ids=np.array([0]), sequences=[[1, 2]], source="valid.tsv", sha256="v")
    catalogue = Catalogue(item_ids=np.array([1, 2, 3, 4]), titles=["A", "B", "C", "D"], source="items.tsv")
    perspectives = named_perspectives("long_candidates")
    config = BuildConfig(candidate_sessions=str(tmp_path / "train.tsv"), num_candidates=1)
    prompts = render_prompts(sessions, catalogue, perspectives, config)
    # votes: 1->2 1, 1->3 1/2, 2->3 1, 2->4 1; session [1, 2]: 3 = 1 + 1/2 * 1/2 = 1.25 beats 4 = 1
    assert "- C_3\n" in prompts.texts["long"][0] and "D_4" not in prompts.texts["long"][0]
    with pytest.raises(CandidateError, match="--candidate-sessions|candidate_sessions"):
        render_prompts(sessions, catalogue, perspectives, BuildConfig())


def test_localizer_excludes_the_given_rows():
    items = np.eye(4, dtype=np.float32) + 0.1
    query = np.array([[1.0, 0.5, 0.2, 0.0]], dtype=np.float32)
    _, idx, w = ItemLocalizer(items).localize(query, 2)
    assert idx.tolist() == [[0, 1]]
    vec, idx, w = ItemLocalizer(items).localize(query, 2, exclude=[[0]])
    assert idx.tolist() == [[1, 2]] and w.sum() == pytest.approx(1.0)
    _, idx, w = ItemLocalizer(items).localize(query, 2, exclude=[[0, 1, 2]])
    assert idx.tolist() == [[3, -1]] and w[0, 1] == 0.0 and w[0, 0] == pytest.approx(1.0)


def test_build_stage_keeps_session_items_out_of_the_top_f():
    sessions = SessionSet(ids=np.array([0, 1]), sequences=[[1, 2], [3]], source="s", sha256="s")
    catalogue = Catalogue(item_ids=np.array([1, 2, 3, 4]), titles=["A", "B", "C", "D"], source="items.tsv")
    item_emb = np.eye(4, dtype=np.float32)
    queries = {"long": np.array([[1.0, 0.9, 0.1, 0.0], [0.0, 0.0, 1.0, 0.5]], dtype=np.float32)}
    off = BuildConfig(top_f=2)
    assert own_rows(sessions, catalogue, off) is None
    assert localize_intents(queries, item_emb, off).top_items["long"].tolist() == [[0, 1], [2, 3]]
    on = BuildConfig(top_f=2, exclude_session_items=True)
    exclude = own_rows(sessions, catalogue, on)
    assert exclude == [[0, 1], [2]]
    located = localize_intents(queries, item_emb, on, exclude).top_items["long"].tolist()
    assert located[0][0] == 2 and 0 not in located[0] and 1 not in located[0]
    assert located[1][0] == 3 and 2 not in located[1]


def test_prompts_without_item_ids_do_not_depend_on_the_numbering():
    titles = ["Alpha", "Beta", "Gamma"]
    perspectives = named_perspectives("long,short")
    texts = []
    for ids in ([1, 2, 3], [3, 1, 2]):  # two preparations number the same titles differently
        catalogue = Catalogue(item_ids=np.array(ids), titles=titles, source="items.tsv")
        session = SessionSet(ids=np.array([0]), sequences=[[ids[0], ids[2]]], source="s", sha256="s")
        with_ids = render_prompts(session, catalogue, perspectives, BuildConfig())
        bare = render_prompts(session, catalogue, perspectives, BuildConfig(item_ids=False))
        assert f"1. Alpha_{ids[0]}\n2. Gamma_{ids[2]}\n" in with_ids.texts["long"][0]
        texts.append(bare.texts["long"][0])
    assert texts[0] == texts[1] and "1. Alpha\n2. Gamma\n" in texts[0]
