"""Issue 24, item 4: the readers never guess silently (headers, quotes, BOM, Unicode forms, cp1252,
time kinds, float and boolean ids)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from llm4sbr_adapter.offline.inputs.catalogue import read_catalogue
from llm4sbr_adapter.offline.inputs.clicks import read_click_log
from llm4sbr_adapter.offline.inputs.sessions import read_sessions
from llm4sbr_adapter.offline.inputs.text import InputFormatError


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ---- header detection --------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["Title", "Name", "title", "Product Name"])
def test_a_headerless_catalogue_keeps_a_first_item_named_like_a_header(tmp_path: Path, word: str) -> None:
    cat = read_catalogue(write(tmp_path / "i.tsv", f"1\t{word}\n2\tBanana\n"))
    assert cat.lookup(1) == word and len(cat) == 2


def test_a_title_only_header_is_read_as_one_and_logged(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        cat = read_catalogue(write(tmp_path / "i.tsv", "code\ttitle\nA7\tBanana\n"))
    assert list(cat.item_ids) == ["A7"] and "pass items_header='no'" in caplog.text


@pytest.mark.parametrize("header", ["session,items", "session_id,item_ids", "SessionId,Items", "sid,clicks"])
def test_a_session_file_header_is_never_read_as_data(tmp_path: Path, header: str) -> None:
    sess = read_sessions(write(tmp_path / "s.csv", f"{header}\ns1,1 2\ns2,2 3\n"))
    assert list(sess.ids) == ["s1", "s2"]


def test_a_first_session_named_session_with_integer_items_is_data(tmp_path: Path) -> None:
    sess = read_sessions(write(tmp_path / "s.csv", "session,1 2\ns2,2 3\n"))
    assert list(sess.ids) == ["session", "s2"]


# ---- quotes ------------------------------------------------------------------------------------
def test_an_unterminated_quote_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", 'item_id,title\n1,Apple\n2,"Heat\n3,Cherry\n4,Date\n')
    with pytest.raises(InputFormatError, match=r"i.csv: line 3: a double quote opened here is never closed"):
        read_catalogue(path)


def test_a_quote_closed_rows_later_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", 'item_id,title\n1,"Heat\n2,Foo"\n3,Cherry\n')
    with pytest.raises(InputFormatError, match=r"line 2: a quoted field runs over lines 2-3"):
        read_catalogue(path)
    sessions = write(tmp_path / "s.csv", 's1,"1 2\ns2,3"\n')
    with pytest.raises(InputFormatError, match=r"line 1: a quoted field runs over lines 1-2"):
        read_sessions(sessions)
    log = write(tmp_path / "c.csv", 'session_id,item_id,timestamp\n1,"5,1\n1,6,2\n')
    with pytest.raises(InputFormatError, match=r"line 2: a double quote opened here is never closed"):
        read_click_log(log)


# ---- BOM, Unicode forms, cp1252 ------------------------------------------------------------------
def test_a_bom_is_removed_from_every_text_input(tmp_path: Path) -> None:
    assert read_catalogue(write(tmp_path / "i.tsv", "\ufeff1\tApple\n")).lookup(1) == "Apple"
    assert list(read_sessions(write(tmp_path / "s.tsv", "\ufeffs1\t1 2\n")).ids) == ["s1"]
    assert list(read_sessions(write(tmp_path / "s.jsonl", '\ufeff{"session_id": "s1", "items": [1]}\n')).ids)
    log = read_click_log(write(tmp_path / "c.csv", "\ufeffsession_id,item_id,timestamp\n1,5,1\n"))
    assert log.items == [5]


def test_nfc_and_nfd_ids_are_one_id(tmp_path: Path) -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    cat = read_catalogue(write(tmp_path / "i.tsv", f"{nfc}\tCoffee\n"))
    sess = read_sessions(write(tmp_path / "s.tsv", f"s1\t{nfd}\n"))
    assert cat.lookup(sess.sequences[0][0]) == "Coffee"
    assert cat.lookup(nfd) == "Coffee"  # in-memory ids too
    with pytest.raises(InputFormatError, match=r"line 2: duplicate item id 'café' \(first seen on line 1\)"):
        read_catalogue(write(tmp_path / "dup.tsv", f"{nfc}\tA\n{nfd}\tB\n"))


def test_cp1252_bytes_are_never_c1_controls(tmp_path: Path) -> None:
    path = write(tmp_path / "i.tsv", "1\tDon\u2019t Stop\n", "cp1252")  # the quote is byte 0x92
    with pytest.raises(InputFormatError, match=r"line 1: control character U\+0092 .*cp1252"):
        read_catalogue(path, encoding="latin-1")
    with pytest.raises(InputFormatError, match=r"byte 0x92 .*cp1252"):
        read_catalogue(path)  # as UTF-8
    assert read_catalogue(path, encoding="cp1252").lookup(1) == "Don\u2019t Stop"


# ---- times and ids -----------------------------------------------------------------------------
def test_a_click_log_mixing_dates_and_integers_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "session_id,item_id,timestamp\n1,5,2024-01-01T10:00:00\n1,6,1704103300\n")
    with pytest.raises(InputFormatError, match=r"line 3: timestamp '1704103300' is an integer, but line 2 has"):
        read_click_log(path)


@pytest.mark.parametrize("bad", ["1.0", "2e3", "True", "false", ".5"])
def test_float_or_boolean_ids_name_file_and_line(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InputFormatError, match=rf"i.tsv: line 2: id '{bad}' is a (float|boolean)"):
        read_catalogue(write(tmp_path / "i.tsv", f"1\tApple\n{bad}\tBanana\n"))
    with pytest.raises(InputFormatError, match=rf"s.tsv: line 1: id '{bad}' is a"):
        read_sessions(write(tmp_path / "s.tsv", f"s1\t1 {bad}\n"))
    with pytest.raises(InputFormatError, match=rf"c.csv: line 2: id '{bad}' is a"):
        read_click_log(write(tmp_path / "c.csv", f"session_id,item_id,timestamp\n1,{bad},1\n"))


@pytest.mark.parametrize("bad", ["true", "1.5", "null", "[1]"])
def test_jsonl_catalogue_ids_must_be_ints_or_strings(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InputFormatError, match=r"i.jsonl: line 1: "):
        read_catalogue(write(tmp_path / "i.jsonl", f'{{"item_id": {bad}, "title": "A"}}\n'))
