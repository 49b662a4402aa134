"""Prompt perspectives, rendering, template files and answer cleaning."""

from __future__ import annotations

import json
import os

import pytest

from llm4sbr_adapter.offline.inputs.sessions import Catalogue, InputFormatError
from llm4sbr_adapter.offline.prompts import (
    DEFAULT_PERSPECTIVES,
    DEFAULT_TEMPLATE,
    SHORT_TERM_ITEMS,
    Perspective,
    PromptError,
    clean_answer,
    item_lines,
    load_perspectives,
    named_perspectives,
    prompt_sha256,
    render_prompt,
    visible_items,
)

CAT = Catalogue.from_pairs([(i, f"Item number {i}") for i in range(1, 101)])


def test_default_prompt_lists_title_itemid_lines_and_asks_for_a_name_only():
    long, short = DEFAULT_PERSPECTIVES
    lines = item_lines([3, 1, 2], CAT, session_id="s")
    assert lines == ["Item number 3_3", "Item number 1_1", "Item number 2_2"]
    text = render_prompt(long, lines)
    assert "1. Item number 3_3\n2. Item number 1_1\n3. Item number 2_2" in text
    assert "long term" in text and "short term" not in text
    assert text.rstrip().endswith("Output only the item's name, with no explanation.")
    assert "short term" in render_prompt(short, lines)


def test_default_perspectives_share_the_listing_and_differ_only_after_it():
    # the paper's views: same listing, qualifier after it, so a session's two prompts share the listing as a prefix
    long, short = DEFAULT_PERSPECTIVES
    lines = item_lines(list(range(1, 21)), CAT)
    long_text, short_text = render_prompt(long, lines), render_prompt(short, lines)
    shared = os.path.commonprefix([long_text, short_text])
    assert shared.endswith("20. Item number 20_20\nJudging from the user's ")
    assert long_text.replace("long term", "short term") == short_text


def test_named_perspectives_presets_and_errors():
    assert named_perspectives("long,short") == list(DEFAULT_PERSPECTIVES)
    long, last5 = named_perspectives(" long , short_last5 ")
    assert (last5.name, last5.qualifier, last5.last_n) == ("short", "short term", SHORT_TERM_ITEMS)
    with pytest.raises(PromptError, match="unknown preset.*'medium'.*choose from long, short, short_last5"):
        named_perspectives("long,medium")
    with pytest.raises(PromptError, match="stored as \\['short'\\]"):
        named_perspectives("short,short_last5")
    with pytest.raises(PromptError, match="none given"):
        named_perspectives(" , ")


def test_short_last5_uses_the_most_recent_items_and_max_items_truncates():
    long, short = named_perspectives("long,short_last5")
    lines = item_lines(list(range(1, 21)), CAT)
    short_text = render_prompt(short, lines)
    assert SHORT_TERM_ITEMS == 5
    assert "Item number 16_16" in short_text and "Item number 20_20" in short_text
    assert "Item number 15_15" not in short_text
    long_text = render_prompt(long, lines, max_items=8)
    assert "Item number 12_12" not in long_text and "1. Item number 13_13" in long_text
    assert "8. Item number 20_20" in long_text
    with pytest.raises(ValueError, match="max_items"):
        render_prompt(long, lines, max_items=0)


def test_missing_title_policies_name_session_and_item():
    with pytest.raises(InputFormatError, match=r"train.txt: session 4: item '999' has no title in catalogue"):
        item_lines([1, 999], CAT, session_id=4, source="train.txt")
    assert item_lines([1, 999], CAT, on_missing_title="skip_item") == ["Item number 1_1"]
    assert item_lines([1, 999], CAT, on_missing_title="id_only") == ["Item number 1_1", "999"]


def test_template_validation():
    Perspective("mine", "weekend", "Items:\n{items}\nFor {qualifier}, {{literal}} braces.")
    with pytest.raises(PromptError, match=r"unknown placeholder.*\{user\}"):
        Perspective("x", "q", "{items} {user}")
    with pytest.raises(PromptError, match=r"must contain \{items\}"):
        Perspective("x", "q", "just {qualifier}")
    with pytest.raises(PromptError, match="positional placeholder"):
        Perspective("x", "q", "{items} {}")
    with pytest.raises(PromptError, match="name must be"):
        Perspective("bad name", "q")
    with pytest.raises(PromptError, match="last_n"):
        Perspective("x", "q", last_n=0)
    with pytest.raises(PromptError, match="not a valid format string"):
        Perspective("x", "q", "{items} {oops")


def test_load_perspectives_file_and_its_errors(tmp_path):
    good = tmp_path / "p.json"
    good.write_text(
        json.dumps(
            [
                {"name": "long", "qualifier": "long term"},
                {
                    "name": "recent",
                    "qualifier": "very short term",
                    "last_n": 2,
                    "template": "Seen:\n{items}\n{qualifier}?",
                },
            ]
        )
    )
    ps = load_perspectives(good)
    assert [p.name for p in ps] == ["long", "recent"] and ps[0].template == DEFAULT_TEMPLATE and ps[1].last_n == 2
    assert render_prompt(ps[1], ["a_1", "b_2", "c_3"]) == "Seen:\n1. b_2\n2. c_3\nvery short term?"

    cases = {
        "unknown.json": (
            [{"name": "a", "qualifier": "q", "template": "{items} {history}"}],
            r"unknown.json: entry 0 \('a'\).*unknown placeholder.*\{history\}",
        ),
        "key.json": ([{"name": "a", "qualifier": "q", "lastn": 3}], r"key.json: entry 0 \('a'\): unknown key.*lastn"),
        "dup.json": (
            [{"name": "a", "qualifier": "q"}, {"name": "a", "qualifier": "r"}],
            r"dup.json: duplicate perspective",
        ),
        "noq.json": ([{"name": "a"}], r"noq.json: entry 0 \('a'\): 'name' and 'qualifier' are required"),
        "empty.json": ([], r"empty.json: expected a non-empty JSON list"),
    }
    for name, (content, pattern) in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(content))
        with pytest.raises(PromptError, match=pattern):
            load_perspectives(path)
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"name": "a",\n')
    with pytest.raises(PromptError, match=r"broken.json: line \d+: not valid JSON"):
        load_perspectives(broken)


def test_prompt_sha256_tracks_templates_and_truncation():
    base = prompt_sha256(DEFAULT_PERSPECTIVES)
    assert base == prompt_sha256(list(DEFAULT_PERSPECTIVES))
    assert base != prompt_sha256(DEFAULT_PERSPECTIVES, max_items=10)
    changed = [DEFAULT_PERSPECTIVES[0], Perspective("short", "short term", DEFAULT_TEMPLATE, 3)]
    assert base != prompt_sha256(changed)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Toy Story (1995)_1", "Toy Story (1995)"),
        ("Toy Story (1995)", "Toy Story (1995)"),
        ("\n\n  Answer: Heat (1995)\nBecause the user likes crime.", "Heat (1995)"),
        ('"Cast Iron Skillet, 12 inch"', "Cast Iron Skillet, 12 inch"),
        ("- **Nebula Drift**", "Nebula Drift"),
        ("1. Item: 'Dutch Oven, Enameled, 6 Quart'_309", "Dutch Oven, Enameled, 6 Quart"),
        ("The answer is: Loaf Pan_B00ABC123", "Loaf Pan"),
        ("Recommended item: Harry_Potter", "Harry_Potter"),  # no digit: not an item id
        ("\u201cAutumn in Kyoto\u201d", "Autumn in Kyoto"),
        ("", ""),
        ("   \n  \n", ""),
        ('""', ""),
    ],
)
def test_clean_answer(raw, expected):
    assert clean_answer(raw) == expected


@pytest.mark.parametrize("last_n,max_items", [(None, 50), (None, 3), (2, 50), (2, 3), (5, 3), (1, 1)])
def test_visible_items_is_what_the_prompt_lists(last_n, max_items):
    perspective = Perspective("p", "q", last_n=last_n)
    lines = [f"Title {i}_{i}" for i in range(1, 8)]
    listed = [line.split(". ", 1)[1] for line in render_prompt(perspective, lines, max_items).splitlines()[1:-1]]
    assert listed == visible_items(lines, perspective, max_items)
    assert visible_items(list(range(1, 8)), perspective, max_items) == [int(x.rsplit("_", 1)[1]) for x in listed]
    assert len(listed) == min(7, max_items, last_n or 7)
    with pytest.raises(ValueError, match="max_items must be >= 1"):
        visible_items(lines, perspective, 0)
