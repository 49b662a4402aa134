"""Catalogue headers in common spellings, --items-header, HTML entities (offline.inputs.sessions.read_catalogue)."""

from __future__ import annotations

import pytest

from llm4sbr_adapter.offline.inputs.sessions import read_catalogue


@pytest.mark.parametrize(
    "header",
    ["item ID\ttitles", "item_id\ttitle", "itemId\tname", "ItemID\tTitle", "id\tproduct title", "sku\tname"],
)
def test_header_spellings_are_recognised(tmp_path, header):
    path = tmp_path / "items.tsv"
    path.write_text(f"{header}\n7\tHeat (1995)\n8\tKolya (1996)\n")
    cat = read_catalogue(path)
    assert cat.item_ids.tolist() == [7, 8] and cat.titles == ["Heat (1995)", "Kolya (1996)"]


def test_header_columns_found_by_name_in_any_order(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text('category,name,itemId\nbooks,"Salt, Cedar",101\nfilms,Heat,102\n')
    cat = read_catalogue(path)
    assert cat.item_ids.tolist() == [101, 102] and cat.titles == ["Salt, Cedar", "Heat"]


def test_items_header_flag_overrides_detection(tmp_path):
    path = tmp_path / "items.tsv"
    path.write_text("code\tlabel\n7\tHeat (1995)\n")
    assert read_catalogue(path).item_ids.tolist() == ["code", "7"]  # auto: "code"/"label" are no known names
    assert read_catalogue(path, header=True).item_ids.tolist() == [7]
    named = tmp_path / "named.tsv"
    named.write_text("id\tname\n7\tHeat (1995)\n")
    assert read_catalogue(named, header=False).item_ids.tolist() == ["id", "7"]


def test_html_entities_are_unescaped_and_counted(tmp_path):
    path = tmp_path / "items.tsv"
    path.write_text("item_id\ttitle\n1\tSalt &amp; Cedar\n2\t&quot;Heat&quot; (1995)\n3\tPlain & simple\n")
    cat = read_catalogue(path)
    assert cat.titles == ["Salt & Cedar", '"Heat" (1995)', "Plain & simple"]
    assert cat.html_unescaped == 2
