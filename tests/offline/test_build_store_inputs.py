"""build_store on the inputs users have: a click log directly, catalogue headers and entities, and
the skip_item policy for sessions with no titled item (zero intent, not asked, counted)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_llm import LINE

from llm4sbr_adapter.build_store import main as build_main
from llm4sbr_adapter.offline import SessionSet, build_intent_store, read_catalogue
from llm4sbr_adapter.store import IntentStore, sha256_file


@pytest.fixture()
def click_log(tmp_path):
    """Two sessions, rows interleaved and out of time order; a catalogue with an 'item ID' header and entities."""
    log = tmp_path / "clicks.csv"
    log.write_text("session_id,item_id,timestamp\n232,3,30\n232,1,10\n77,4,5\n232,2,20\n77,5,6\n77,1,7\n232,4,40\n")
    items = tmp_path / "items.tsv"
    items.write_text("item ID\ttitles\n1\tSalt &amp; Cedar\n2\tThe Quiet Orbit\n3\tCopper Skies\n4\tHeat\n5\tKolya\n")
    return log, items


def test_a_click_log_is_read_directly_grouped_in_time_order(click_log, tmp_path, capsys):
    log, items = click_log
    export = tmp_path / "prompts.jsonl"
    argv = ["--sessions", str(log), "--items", str(items), "--dry-run", "--export-prompts", str(export)]
    assert build_main([*argv, "--no-progress"]) == 0
    prompts = {}
    for line in export.read_text().splitlines():
        record = json.loads(line)
        prompts.setdefault(record["session_id"], record["prompt"])
    # session 232: clicks 1, 2, 3 in time order; the last click (4) is held out as the target
    shown = [m.group(1) for m in map(LINE.match, prompts[232].splitlines()) if m]
    assert shown == ["Salt & Cedar", "The Quiet Orbit", "Copper Skies"]
    assert "Heat" not in prompts[232] and "titles" not in export.read_text()
    assert "untitled items:  0 of the sessions' 5 distinct items" in capsys.readouterr().out
    everything = tmp_path / "all.jsonl"
    assert build_main([*argv[:4], "--dry-run", "--export-prompts", str(everything), "--clicks-target", "none"]) == 0
    assert "Heat_4" in next(json.loads(x)["prompt"] for x in everything.read_text().splitlines())


def test_click_log_store_records_entities_and_file(click_log, tmp_path, encoder, title_llm):
    from llm4sbr_adapter.offline.inputs.clicks import read_click_sessions

    log, items = click_log
    sessions = read_click_sessions(log)
    out = tmp_path / "s.safetensors"
    build_intent_store(sessions, read_catalogue(items), out, llm=title_llm, encoder=encoder, top_f=2, progress=False)
    store = IntentStore.open(out)
    assert sorted(store.session_ids.tolist()) == [77, 232]
    assert store.metadata.sessions_sha256 == sha256_file(log) and store.metadata.sessions_source == "clicks.csv"
    assert store.metadata.extra["catalogue_html_unescaped"] == 1


def test_skip_item_gives_a_session_without_titles_a_zero_intent_and_never_asks(tmp_path, encoder, capsys, title_llm):
    items = tmp_path / "items.tsv"
    items.write_text("item_id\ttitle\n1\tHeat\n2\tKolya\n3\t\n4\t\n")  # items 3 and 4 have no title
    sessions = SessionSet.from_lists([[1, 3], [3, 4], [2, 1]], source="s.tsv")
    with pytest.raises(ValueError, match="item '3' has no title"):
        build_intent_store(sessions, items, None, dry_run=True, top_f=1, progress=False)
    llm = title_llm
    out = tmp_path / "skip.safetensors"
    report = build_intent_store(
        sessions, items, out, llm=llm, encoder=encoder, top_f=1, on_missing_title="skip_item", progress=False
    )
    assert report.untitled_sessions == 1 and report.untitled_items == 2 and report.distinct_items == 4
    assert report.prompts_total == 4 and len(llm.prompts) == 4  # 2 sessions x 2 perspectives; session 1 not asked
    assert report.empty_answers == {"long": 0, "short": 0}
    store = IntentStore.open(out)
    assert store.session_ids.tolist() == [0, 1, 2] and store.metadata.extra["untitled_sessions"] == 1
    for name in store.perspectives:
        vectors = np.asarray(store.vectors(name))
        assert not vectors[1].any() and vectors[0].any() and vectors[2].any()
    assert store.explain(1)["long"]["top_items"] == []
    dry = build_intent_store(sessions, items, None, dry_run=True, top_f=1, on_missing_title="skip_item", progress=False)
    assert "untitled items:  2 of the sessions' 4 distinct items" in dry.summary()
    assert "untitled sessions: 1" in dry.summary()


def test_inspect_store_reads_the_click_log_a_store_was_built_from(click_log, tmp_path, encoder, title_llm):
    from llm4sbr_adapter.inspect_store import inspect_store
    from llm4sbr_adapter.offline.inputs.clicks import read_click_sessions

    log, items = click_log
    out = tmp_path / "s.safetensors"
    sessions = read_click_sessions(log)
    build_intent_store(sessions, read_catalogue(items), out, llm=title_llm, encoder=encoder, top_f=2, progress=False)
    info = inspect_store(out, 232, sessions=log, items=items)
    assert [i["title"] for i in info["session"]["items"]] == ["Salt & Cedar", "The Quiet Orbit", "Copper Skies"]
