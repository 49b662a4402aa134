"""Every MovieLens release through one reader (offline.inputs.movielens) and through prepare_data."""

from __future__ import annotations

import json

import pytest

from llm4sbr_adapter.experiments.data.prepare_data import main as prepare_main
from llm4sbr_adapter.offline.inputs.movielens import detect_release, read_movielens
from llm4sbr_adapter.offline.inputs.text import InputFormatError

# "Åsa" in UTF-8 is c3 85 73 61: read as latin-1 it holds \x85, where str.splitlines() splits a line.
CSV_MOVIES = (
    'movieId,title,genres\r\n1,"Heat, the movie (1995)",Action\r\n2,Åsa-Nisse (1949),Comedy\r\n'
    '3,"Léon: The Professional (a.k.a. Léon, 1994)",Drama\r\n4,Plain (2000),Drama\r\n'
)


def _ratings_csv(n_users: int = 6) -> str:
    lines = ["userId,movieId,rating,timestamp"]
    for user in range(1, n_users + 1):
        for k, item in enumerate((1, 2, 3, 4, 1, 3)):
            lines.append(f"{user},{item},4.0,{1_000_000 + user * 100_000 + k * 60}")
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture()
def ml_csv(tmp_path):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_bytes(_ratings_csv().encode())
    (folder / "movies.csv").write_bytes(CSV_MOVIES.encode("utf-8"))
    return folder


def test_csv_release_with_header_quoted_commas_crlf_and_utf8(ml_csv):
    assert detect_release(ml_csv)[0] == "ml-csv"
    log = read_movielens(ml_csv)
    assert log.titles == {
        1: "Heat, the movie (1995)",
        2: "Åsa-Nisse (1949)",
        3: "Léon: The Professional (a.k.a. Léon, 1994)",
        4: "Plain (2000)",
    }
    assert len(log.items) == 36 and log.users[:2] == ["1", "1"] and log.items[:4] == [1, 2, 3, 4]
    assert int(log.times[1] - log.times[0]) == 60


def test_csv_release_that_is_not_utf8_names_file_line_and_byte(ml_csv):
    data = CSV_MOVIES.encode("latin-1")
    (ml_csv / "movies.csv").write_bytes(data)
    offset = data.index(b"\xc5")
    with pytest.raises(InputFormatError, match=rf"movies.csv: line 3: not UTF-8 \(byte 0xc5 at byte offset {offset}, "):
        read_movielens(ml_csv)
    assert read_movielens(ml_csv, encoding="latin-1").titles[2] == "Åsa-Nisse (1949)"


def test_ml1m_latin1_and_a_utf8_copy_of_it(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "users.dat").write_text("1::F::1::10::48067\n")
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1::2::3::978302109\n")
    movies = "1::Léon (1994)::Drama\n2::Åsa-Nisse (1949)::Comedy\n"
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    log = read_movielens(folder)
    assert detect_release(folder)[0] == "ml-1m"
    assert log.titles == {1: "Léon (1994)", 2: "Åsa-Nisse (1949)"}
    (folder / "movies.dat").write_bytes(movies.encode("utf-8"))  # a re-saved copy: no mojibake, no split at \x85
    assert read_movielens(folder).titles == {1: "Léon (1994)", 2: "Åsa-Nisse (1949)"}


def test_ml100k_and_ml10m_detected(tmp_path):
    ml100k = tmp_path / "ml-100k"
    ml100k.mkdir()
    (ml100k / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    (ml100k / "u.item").write_bytes(
        "242|Kolya (1996)|24-Jan-1997||http://x|0\n302|Cité (1997)|x||y|0\n".encode("latin-1")
    )
    log = read_movielens(ml100k)
    assert log.titles == {242: "Kolya (1996)", 302: "Cité (1997)"} and log.items == [242, 302]
    ml10m = tmp_path / "ml-10M100K"
    ml10m.mkdir()
    (ml10m / "ratings.dat").write_text("1::122::5::838985046\n")
    (ml10m / "movies.dat").write_bytes(b"122::Boomerang (1992)::Comedy\n")
    assert detect_release(ml10m)[0] == "ml-10m" and read_movielens(ml10m).titles == {122: "Boomerang (1992)"}
    with pytest.raises(FileNotFoundError, match="ratings.csv"):
        detect_release(tmp_path)


def test_prepare_data_reads_a_csv_release_without_conversion(ml_csv, tmp_path, capsys):
    out = tmp_path / "prepared"
    args = ["movielens", "--src", str(ml_csv), "--out", str(out), "--min-item-count", "1", "--window", "100000"]
    assert prepare_main(args) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["raw_clicks"] == 36 and stats["items_without_title"] == 0
    titles = (out / "items.tsv").read_text(encoding="utf-8")
    assert "Heat, the movie (1995)" in titles and "Åsa-Nisse (1949)" in titles
