"""Readers of stage one: sessions (SR-GNN pickle, TSV/CSV, JSONL) and the item catalogue."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from llm4sbr_adapter.offline.inputs.sessions import (
    Catalogue,
    InputFormatError,
    SessionSet,
    check_unique_ids,
    read_catalogue,
    read_sessions,
)
from llm4sbr_adapter.store import sha256_file


def write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding)
    return path


# --------------------------------------------------------------------------- sessions: pickle
def test_srgnn_pickle_ids_are_row_indices_and_file_is_recorded(tmp_path):
    path = tmp_path / "train.txt"
    with open(path, "wb") as f:
        pickle.dump(([[1, 2, 3], [4, 5], [6]], [9, 8, 7]), f)
    s = read_sessions(path)
    assert s.ids.dtype == np.int64 and s.ids.tolist() == [0, 1, 2]
    assert s.sequences == [[1, 2, 3], [4, 5], [6]]
    assert s.targets == [9, 8, 7]
    assert s.source == "train.txt"
    assert s.sha256 == sha256_file(path)


class _Payload:
    """Unpickling this runs code: it creates the folder ``marker``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("name", ["evil.tsv", "evil.dat", "evil.csv", "evil.jsonl", "evil"])
def test_a_pickle_under_another_name_is_refused_and_never_unpickled(tmp_path, name):
    marker = tmp_path / "code_ran"
    path = tmp_path / name
    path.write_bytes(pickle.dumps(([[1, 2]], [_Payload(marker)]), protocol=4))
    with pytest.raises(InputFormatError, match=rf"{name}: starts with a pickle header .*sessions_format='pickle'"):
        read_sessions(path)
    assert not marker.exists()


def test_an_explicit_pickle_format_reads_any_name(tmp_path):
    path = tmp_path / "sessions.tsv"
    path.write_bytes(pickle.dumps(([[1, 2], [3]], [4, 5])))
    assert read_sessions(path, fmt="pickle").sequences == [[1, 2], [3]]
    legacy = tmp_path / "train.txt"  # SR-GNN names still auto-detected by their header
    legacy.write_bytes(pickle.dumps(([[1, 2]], [4])))
    assert read_sessions(legacy).sequences == [[1, 2]]


def test_pickle_that_is_not_a_sequences_targets_tuple_names_the_file(tmp_path):
    path = tmp_path / "bad.pkl"
    with open(path, "wb") as f:
        pickle.dump({"a": 1}, f)
    with pytest.raises(InputFormatError, match="bad.pkl.*sequences, targets"):
        read_sessions(path)


def test_pickle_empty_session_names_row(tmp_path):
    path = tmp_path / "test.txt"
    with open(path, "wb") as f:
        pickle.dump(([[1, 2], []], [3, 4]), f)
    with pytest.raises(InputFormatError, match=r"test.txt: row 1: session 1 has no items"):
        read_sessions(path)
    s = read_sessions(path, on_empty="skip")
    assert s.ids.tolist() == [0] and s.targets == [3]


# --------------------------------------------------------------------------- sessions: TSV / CSV
def test_tsv_with_header_string_ids_and_optional_target(tmp_path):
    path = write(tmp_path / "s.tsv", "session_id\titem_ids\n# a comment\nu1\t10 11 12\n\nu2\tB00X 7\t99\n")
    s = read_sessions(path)
    assert s.ids.dtype.kind == "U" and s.ids.tolist() == ["u1", "u2"]
    assert s.sequences == [[10, 11, 12], ["B00X", 7]]
    assert s.targets == [None, 99]
    assert s.lines == [3, 5]


def test_tsv_integer_ids_without_header_become_int64(tmp_path):
    path = write(tmp_path / "s.tsv", "5\t1 2\n7\t3\n")
    s = read_sessions(path)
    assert s.ids.dtype == np.int64 and s.ids.tolist() == [5, 7]


def test_tsv_errors_name_file_line_and_id(tmp_path):
    bad_cols = write(tmp_path / "cols.tsv", "session_id\titem_ids\ns1\t1 2\ns2\n")
    with pytest.raises(InputFormatError, match=r"cols.tsv: line 3: expected 2 or 3 columns"):
        read_sessions(bad_cols)
    empty = write(tmp_path / "empty.tsv", "s1\t1 2\ns2\t  \n")
    with pytest.raises(InputFormatError, match=r"empty.tsv: line 2: session 's2' has no items"):
        read_sessions(empty)
    assert read_sessions(empty, on_empty="skip").ids.tolist() == ["s1"]
    dup = write(tmp_path / "dup.tsv", "s1\t1\ns2\t2\ns1\t3\n")
    with pytest.raises(InputFormatError, match=r"dup.tsv: line 3: duplicate session id 's1' \(first seen on line 1\)"):
        read_sessions(dup)


@pytest.mark.parametrize(
    "name,text",
    [
        ("s.tsv", b"s1\t1 2\ns2\t3 caf\xe9\n"),
        ("s.jsonl", b'{"session_id": 1, "items": [1]}\n{"session_id": 2, "items": ["caf\xe9"]}\n'),
    ],
)
def test_sessions_not_utf8_names_line_byte_and_column(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text)
    col = text.split(b"\n")[1].index(b"\xe9") + 1
    offset = text.index(b"\xe9")
    with pytest.raises(
        InputFormatError,
        match=rf"{name}: line 2: not UTF-8 \(byte 0xe9 at byte offset {offset}, column {col}\); "
        r".*encoding='latin-1'",
    ):
        read_sessions(path)
    assert read_sessions(path, encoding="latin-1").ids.tolist() == (["s1", "s2"] if name == "s.tsv" else [1, 2])


def test_csv_sessions(tmp_path):
    path = write(tmp_path / "s.csv", "session_id,item_ids\na,1 2 3\nb,4\n")
    s = read_sessions(path)
    assert s.ids.tolist() == ["a", "b"] and s.sequences == [[1, 2, 3], [4]]


# --------------------------------------------------------------------------- sessions: JSONL
def test_jsonl_sessions_and_errors(tmp_path):
    path = write(
        tmp_path / "s.jsonl", '{"session_id": 3, "items": [1, "x"], "target": 4}\n\n{"session_id": 9, "items": [2]}\n'
    )
    s = read_sessions(path)
    assert s.ids.tolist() == [3, 9] and s.sequences == [[1, "x"], [2]] and s.targets == [4, None]
    bad = write(tmp_path / "bad.jsonl", '{"session_id": 1, "items": [1]}\n{"session_id": 2, "items": [1\n')
    with pytest.raises(InputFormatError, match=r"bad.jsonl: line 2: not valid JSON"):
        read_sessions(bad)
    nokey = write(tmp_path / "nokey.jsonl", '{"id": 1, "items": [1]}\n')
    with pytest.raises(
        InputFormatError, match=r"nokey.jsonl: line 1: expected an object with 'session_id' and 'items'"
    ):
        read_sessions(nokey)
    badi = write(tmp_path / "badi.jsonl", '{"session_id": "q", "items": "1 2"}\n')
    with pytest.raises(InputFormatError, match=r"badi.jsonl: line 1: session 'q': 'items' must be a list"):
        read_sessions(badi)
    dup = write(tmp_path / "dup.jsonl", '{"session_id": 1, "items": [1]}\n{"session_id": 1, "items": [2]}\n')
    with pytest.raises(InputFormatError, match=r"dup.jsonl: line 2: duplicate session id '1'"):
        read_sessions(dup)


def test_missing_file_and_bad_format():
    with pytest.raises(FileNotFoundError, match="sessions file not found"):
        read_sessions("/nonexistent/sessions.tsv")


def test_shards_are_contiguous_disjoint_and_complete():
    s = SessionSet.from_lists([[i] for i in range(10)])
    parts = [s.shard(k, 3) for k in range(3)]
    assert [len(p) for p in parts] == [3, 3, 4]
    assert np.concatenate([p.ids for p in parts]).tolist() == list(range(10))
    assert all(p.sha256 == s.sha256 and p.source == s.source for p in parts)
    with pytest.raises(ValueError, match="0 <= k < n"):
        s.shard(3, 3)


# --------------------------------------------------------------------------- catalogue
def test_catalogue_tsv_with_header_and_extra_columns(tmp_path):
    path = write(tmp_path / "items.tsv", "item_id\ttitle\tgenre\n1\t  Toy   Story (1995) \tanimation\n2\tHeat\tcrime\n")
    c = read_catalogue(path)
    assert c.item_ids.dtype == np.int64 and c.item_ids.tolist() == [1, 2]
    assert c.titles == ["Toy Story (1995)", "Heat"]
    assert c.lookup(1) == c.lookup("1") == c.lookup(np.int64(1)) == "Toy Story (1995)"
    assert c.lookup(3) is None and 2 in c and "2" in c


def test_catalogue_headerless_pipe_latin1_like_movielens(tmp_path):
    path = tmp_path / "u.item"
    path.write_bytes(
        "1|Toy Story (1995)|01-Jan-1995||http://x\n2|Cité des enfants perdus, La (1995)|x||y\n".encode("latin-1")
    )
    with pytest.raises(
        InputFormatError,
        match=r"u.item: line 2: not UTF-8 \(byte 0xe9 at byte offset 46, column 6\); "
        r"try items_encoding='latin-1'",
    ):
        read_catalogue(path)
    c = read_catalogue(path, encoding="latin-1")
    assert c.titles[1] == "Cité des enfants perdus, La (1995)"


def test_catalogue_duplicate_id_and_short_row_name_line(tmp_path):
    dup = write(tmp_path / "dup.tsv", "item_id\ttitle\n1\tA\n2\tB\n1\tC\n")
    with pytest.raises(InputFormatError, match=r"dup.tsv: line 4: duplicate item id '1' \(first seen on line 2\)"):
        read_catalogue(dup)
    short = write(tmp_path / "short.tsv", "1\tA\n2\n")
    with pytest.raises(InputFormatError, match=r"short.tsv: line 2: expected at least 2 columns"):
        read_catalogue(short)


def test_one_duplicate_check_for_sessions_and_catalogues_built_in_memory():
    assert check_unique_ids([3, "a", 7], None, "x", "item") == {"3": 0, "a": 1, "7": 2}
    with pytest.raises(InputFormatError, match=r"<memory>: line 3: duplicate session id '5' \(first seen on line 1\)"):
        SessionSet.from_lists([[1], [2], [3]], ids=[5, 6, 5])
    with pytest.raises(InputFormatError, match=r"cat: line 2: duplicate item id '4' \(first seen on line 1\)"):
        Catalogue(item_ids=[4, 4], titles=["A", "B"], source="cat")
    with pytest.raises(InputFormatError, match=r"f.tsv: line 9: duplicate item id 'x' \(first seen on line 5\)"):
        check_unique_ids(["x", "y", "x"], [5, 7, 9], "f.tsv", "item")


@pytest.mark.parametrize(
    "name,text,line,got,first",
    [
        ("header.tsv", "item_id\ttitle\n1\tA\n2\tPart\tTwo\n", 3, 3, 2),  # a tab inside a title
        ("headerless.tsv", "1\tA\tx\n2\tB\tx\n3\tC\tD\tx\n", 3, 4, 3),
        ("fewer.tsv", "item_id\ttitle\tgenre\n1\tA\tx\n2\tB\n", 3, 2, 3),
        ("pipes.item", "1|A|x\n2|B|C|x\n", 2, 4, 3),
        ("unquoted.csv", "item_id,title\n1,Heat, the movie\n", 2, 3, 2),
    ],
)
def test_catalogue_row_whose_field_count_differs_from_the_first_row_is_an_error(tmp_path, name, text, line, got, first):
    path = write(tmp_path / name, text)
    with pytest.raises(InputFormatError, match=rf"{name}: line {line}: {got} fields, but line 1 has {first}"):
        read_catalogue(path)


def test_catalogue_csv_honours_quoted_separators(tmp_path):
    path = write(tmp_path / "q.csv", 'item_id,title\n1,"Heat, the movie"\n2,"Tab\there"\n')
    assert read_catalogue(path).titles == ["Heat, the movie", "Tab here"]


def test_catalogue_jsonl_keeps_unicode_line_separators_inside_titles(tmp_path):
    path = write(tmp_path / "c.jsonl", json.dumps({"item_id": 1, "title": "A\u2028B"}, ensure_ascii=False) + "\n")
    assert read_catalogue(path).titles == ["A B"]


def test_catalogue_empty_titles_are_left_out(tmp_path):
    path = write(tmp_path / "items.tsv", "item_id\ttitle\n1\tA\n2\t \n3\tC\n")
    c = read_catalogue(path)
    assert c.item_ids.tolist() == [1, 3] and c.lookup(2) is None


def test_catalogue_hash_ignores_layout_but_not_content(tmp_path):
    tsv = write(tmp_path / "a.tsv", "item_id\ttitle\textra\n1\tA  b\tz\nx2\tC\tz\n")
    jsonl = write(
        tmp_path / "b.jsonl",
        json.dumps({"item_id": 1, "title": "A b"}) + "\n" + json.dumps({"id": "x2", "title": "C"}) + "\n",
    )
    a, b = read_catalogue(tsv), read_catalogue(jsonl)
    assert a.item_ids.dtype.kind == "U"  # mixed ids -> strings
    assert a.sha256 == b.sha256
    other = Catalogue.from_pairs([(1, "A b"), ("x2", "D")])
    assert other.sha256 != a.sha256


def test_int_session_items_match_string_catalogue_ids(tmp_path):
    path = tmp_path / "train.txt"
    with open(path, "wb") as f:
        pickle.dump(([[7, 8]], [9]), f)
    cat = read_catalogue(write(tmp_path / "items.tsv", "7\tSeven\n8\tEight\n"))
    s = read_sessions(path)
    assert [cat.lookup(i) for i in s.sequences[0]] == ["Seven", "Eight"]


@pytest.mark.data
def test_real_catalogues(shared_data):
    ml = read_catalogue(shared_data / "ml-100k" / "u.item", encoding="latin-1")
    assert len(ml) == 1682 and ml.lookup(1) == "Toy Story (1995)"
    beauty = read_catalogue(shared_data / "beauty" / "beauty_items.tsv")
    assert len(beauty) <= 12101 and beauty.item_ids.dtype.kind == "U"
