"""Click logs (one click per row): columns, grouping, time order, sessionisation, prepare_data clicks."""

from __future__ import annotations

import json
import pickle

import pytest

from llm4sbr_adapter.experiments.data.prepare_data import main as prepare_main
from llm4sbr_adapter.experiments.data.split_checks import require_splits
from llm4sbr_adapter.offline.inputs.clicks import click_sessions, read_click_log, read_click_log_with
from llm4sbr_adapter.offline.inputs.text import InputFormatError


def test_clicks_grouped_by_session_in_time_order(tmp_path):
    path = tmp_path / "log.csv"
    # rows of two sessions interleaved and out of time order; an equal time keeps file order
    path.write_text("session_id,item_id,timestamp\ns2,30,500\ns1,11,200\ns1,10,100\ns2,31,400\ns1,12,200\ns1,13,300\n")
    sessions = click_sessions(read_click_log(path))
    assert [(s.id, s.items, s.times) for s in sessions] == [
        ("s2", [31, 30], [400, 500]),
        ("s1", [10, 11, 12, 13], [100, 200, 200, 300]),
    ]


@pytest.mark.parametrize(
    "header,sep",
    [
        ("sessionId;userId;itemId;timeframe;eventdate", ";"),  # Diginetica
        ("SessionID\tItemID\tTime", "\t"),
        ("session,item,ts,extra", ","),
    ],
)
def test_columns_detected_from_common_spellings(tmp_path, header, sep):
    names = header.split(sep)
    values = {"session": "7", "item": "214", "time": "2016-05-09", "user": "u1"}

    def row(time: str) -> str:
        out = []
        for name in names:
            low = name.lower()
            role = next((r for r in ("session", "item", "user") if low.startswith(r)), None)
            out.append(values[role] if role else (time if "date" in low or "time" in low or low == "ts" else "x"))
        return sep.join(out)

    path = tmp_path / ("log.tsv" if sep == "\t" else "log.csv")
    path.write_text(f"{header}\n{row('2016-05-10')}\n{row('2016-05-09T10:00:00Z')}\n")
    log = read_click_log(path)
    assert log.sessions == [7, 7] and log.items == [214, 214]
    assert log.times.tolist()[1] - 1_462_752_000 == 36_000  # 2016-05-09 00:00 UTC + 10 h


def test_named_columns_and_a_missing_column(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("visit,product,when\na,1,5\na,2,6\n")
    with pytest.raises(InputFormatError, match=r"log.csv: line 1: found no item and no time and no session"):
        read_click_log(path)
    log = read_click_log(path, session_column="visit", item_column="product", time_column="when")
    assert [s.items for s in click_sessions(log)] == [[1, 2]]
    with pytest.raises(InputFormatError, match=r"no column 'visits' \(session_column='visits'\)"):
        read_click_log(path, session_column="visits", item_column="product", time_column="when")


def test_bad_time_names_file_line_and_column(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("session_id,item_id,timestamp\n1,2,3\n1,4,yesterday\n")
    with pytest.raises(InputFormatError, match=r"log.csv: line 3: timestamp 'yesterday' is neither an integer"):
        read_click_log(path)


def test_users_without_sessions_cut_by_gap_or_window(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu1,1,0\nu1,2,500\nu1,3,2000\nu2,4,590\nu2,5,610\n")
    log = read_click_log(path)
    with pytest.raises(ValueError, match="no session column"):
        click_sessions(log)
    by_gap = click_sessions(log, gap=600)
    assert [(s.id, s.items) for s in by_gap] == [("u1_1", [1, 2]), ("u1_2", [3]), ("u2_1", [4, 5])]
    by_window = click_sessions(log, window=600)
    assert [(s.id, s.items) for s in by_window] == [("u1_1", [1, 2]), ("u1_2", [3]), ("u2_1", [4]), ("u2_2", [5])]


def test_parquet_log(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "log.parquet"
    pd.DataFrame({"sessionId": [1, 1, 2], "itemId": [5, 4, 6], "timestamp": [2, 1, 3]}).to_parquet(path)
    assert [s.items for s in click_sessions(read_click_log(path))] == [[4, 5], [6]]
    stamps = pd.to_datetime(["2016-05-09 10:00:01", "2016-05-09 10:00:00", "2016-05-10 00:00:00"]).as_unit("us")
    pd.DataFrame({"session_id": [1, 1, 2], "item_id": [5, 4, 6], "time": stamps}).to_parquet(path)
    log = read_click_log(path)
    assert log.times.tolist() == [1_462_788_001, 1_462_788_000, 1_462_838_400]
    assert [s.items for s in click_sessions(log)] == [[4, 5], [6]]


def _log_with_titles(tmp_path, sessions: int = 60):
    lines = ["session_id,item_id,timestamp"]
    for s in range(sessions):
        for k in range(4):
            lines.append(f"S{s},{(s + k) % 8 + 1},{1000 * s + 10 * k}")
    log = tmp_path / "clicks.csv"
    log.write_text("\n".join(lines) + "\n")
    items = tmp_path / "items.csv"
    items.write_text("item ID,title\n" + "".join(f"{i},Item &amp; {i}\n" for i in range(1, 9)))
    return log, items


@pytest.mark.parametrize("protocol", ["paper", "temporal"])
def test_prepare_data_clicks_writes_the_usual_outputs(tmp_path, protocol):
    log, items = _log_with_titles(tmp_path)
    out = tmp_path / protocol
    argv = ["clicks", "--src", str(log), "--items", str(items), "--out", str(out), "--protocol", protocol]
    assert prepare_main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dataset"] == "clicks" and stats["protocol"]["name"] == protocol
    assert stats["items_without_title"] == 0 and stats["clicks"] == 240
    rows = {}
    for split in ("train", "valid", "test"):
        with open(out / f"{split}.txt", "rb") as f:
            seqs, targets = pickle.load(f)
        rows[split] = len(targets)
        assert len(seqs) == len(targets) > 0
    assert sum(rows.values()) == 60 * 3  # every prefix of every 4-click session
    assert "Item & 3" in (out / "items.tsv").read_text()
    if protocol == "temporal":  # every test session ends after every training session
        meta = {s: (out / f"rows_{s}.tsv").read_text().splitlines()[1:] for s in ("train", "test")}
        last_train = max(int(r.split("\t")[3]) for r in meta["train"])
        assert min(int(r.split("\t")[3]) for r in meta["test"]) > last_train


def test_prepare_data_clicks_refuses_a_flag_of_the_other_protocol(tmp_path, capsys):
    log, items = _log_with_titles(tmp_path)
    argv = ["clicks", "--src", str(log), "--out", str(tmp_path / "x"), "--protocol", "temporal", "--seed", "1"]
    assert prepare_main(argv) == 2
    assert "--seed only apply to the other protocol" in capsys.readouterr().err


def test_a_log_without_header_names_its_columns(tmp_path):
    """YooChoose's clicks.dat has no header: session, ISO time with Z, item, category."""
    path = tmp_path / "clicks.dat"
    path.write_text(
        "1,2014-04-07T10:54:09.868Z,214536500,0\n1,2014-04-07T10:51:09.277Z,214536502,0\n"
        "2,2014-04-07T13:56:37.614Z,214662742,0\n"
    )
    names = ["session_id", "timestamp", "item_id", "category"]
    sessions = click_sessions(read_click_log(path, names=names))
    assert [(s.id, s.items) for s in sessions] == [(1, [214536502, 214536500]), (2, [214662742])]
    with pytest.raises(InputFormatError, match="found no item and no time and no session"):
        read_click_log(path)  # its first click is not a header


def test_build_store_reads_a_headerless_log_with_log_columns(tmp_path, capsys):
    from llm4sbr_adapter.build_store import main as build_main

    log = tmp_path / "clicks.dat"
    log.write_text("7,100,1\n7,101,2\n7,102,3\n8,101,5\n8,100,6\n")
    items = tmp_path / "items.tsv"
    items.write_text("item_id\ttitle\n100\tHeat\n101\tKolya\n102\tSalt\n")
    argv = ["--sessions", str(log), "--items", str(items), "--log-columns", "session,item,time", "--dry-run"]
    assert build_main([*argv, "--top-f", "1", "--no-progress"]) == 0
    assert "sessions:        2" in capsys.readouterr().out


def _headerless_log(tmp_path):
    log = tmp_path / "clicks.dat"
    log.write_text("7,100,1\n7,101,2\n7,102,3\n8,101,5\n8,100,6\n")
    items = tmp_path / "items.tsv"
    items.write_text("item_id\ttitle\n100\tHeat\n101\tKolya\n102\tSalt\n")
    return log, items


def test_build_intent_store_takes_the_click_log_settings_from_python(tmp_path):
    from llm4sbr_adapter.offline import BuildConfig, build_intent_store

    log, items = _headerless_log(tmp_path)
    click_log = {"log_columns": ["session", "item", "time"]}
    report = build_intent_store(log, items, None, dry_run=True, top_f=1, progress=False, click_log=click_log)
    assert report.sessions == 2
    config = BuildConfig(click_log=click_log)
    assert config.to_dict()["click_log"]["log_columns"] == ["session", "item", "time"]
    assert BuildConfig.from_dict(config.to_dict()) == config
    assert "click_log" not in BuildConfig().to_dict()  # at its default it is left out (stores as before)


def test_a_latin1_click_log_is_told_the_encoding_flag_of_the_command_that_read_it(tmp_path, capsys):
    from llm4sbr_adapter.build_store import main as build_main
    from llm4sbr_adapter.offline.inputs.clicks import read_click_sessions

    log = tmp_path / "clicks.csv"
    log.write_bytes("session_id,item_id,timestamp\ns1,100,1\nsé,101,2\n".encode("latin-1"))
    items = tmp_path / "items.tsv"
    items.write_text("item_id\ttitle\n100\tHeat\n101\tKolya\n")
    assert build_main(["--sessions", str(log), "--items", str(items), "--dry-run", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "not UTF-8" in err and "--sessions-encoding latin-1" in err and " --encoding" not in err
    assert prepare_main(["clicks", "--src", str(log), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8" in err and "pass --encoding latin-1" in err
    with pytest.raises(InputFormatError, match="sessions_encoding='latin-1'"):
        read_click_sessions(log)


def test_a_missing_named_column_is_told_in_each_spelling(tmp_path, capsys):
    from llm4sbr_adapter.build_store import main as build_main

    log, items = _log_with_titles(tmp_path)
    argv = ["--sessions", str(log), "--items", str(items), "--session-column", "visit", "--dry-run"]
    assert build_main([*argv, "--no-progress"]) == 1
    assert "no column 'visit' (--session-column visit)" in capsys.readouterr().err
    assert prepare_main(["clicks", "--src", str(log), "--out", str(tmp_path / "o"), "--time-column", "when"]) == 2
    assert "no column 'when' (--time-column when)" in capsys.readouterr().err


def _log_without_times(tmp_path):
    """Clicks (session, item, in order) without times; each session's time and user in a sessions table."""
    log = tmp_path / "clicks.csv"
    log.write_text("sessionId,itemId\n" + "".join(f"S{s},{(s + k) % 8 + 1}\n" for s in range(60) for k in range(4)))
    times = tmp_path / "sessions.tsv"
    rows = "".join(f"S{s}\tU{s % 20}\t2020-01-{1 + s // 3:02d}T10:00:00\n" for s in reversed(range(60)))
    times.write_text("session_id\tuser_id\tevent_date\n" + rows)
    return log, times


def test_session_times_join_gives_each_click_its_sessions_time_and_user(tmp_path):
    log, times = _log_without_times(tmp_path)
    with pytest.raises(InputFormatError, match="no time column"):
        read_click_log(log)  # without the join, the missing times are named
    read = read_click_log_with(log, {"session_times": str(times)})
    assert read.sessions[:4] == ["S0"] * 4 and read.users[:4] == ["U0"] * 4
    assert read.times[0] == read.times[3] == 1577872800  # 2020-01-01T10:00:00Z, for every click of S0
    sessions = click_sessions(read)
    assert [s.items for s in sessions[:2]] == [[1, 2, 3, 4], [2, 3, 4, 5]]  # file order kept within a session

    times.write_text("session_id\tevent_date\nS0\t2020-01-01\n")
    with pytest.raises(InputFormatError, match=r"line 6: session 'S1' has no row in the session times table"):
        read_click_log_with(log, {"session_times": str(times)})


def test_prepare_data_clicks_joins_session_times_with_one_flag(tmp_path):
    log, times = _log_without_times(tmp_path)
    out = tmp_path / "out"
    argv = ["clicks", "--src", str(log), "--out", str(out), "--session-times", str(times), "--min-item-count", "1"]
    assert prepare_main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["clicks"] == 240 and stats["users"] == 20


def test_an_emptied_split_names_the_filter_the_counts_and_the_flags(tmp_path, capsys):
    """Most sessions hold an item seen only once: --min-item-count 5 keeps 6 of 40, too few for three splits."""
    lines = ["session_id,item_id,timestamp"]
    for s in range(40):
        items = [1, 2] if s < 6 else [1, 100 + s]  # item 100+s occurs once
        lines += [f"S{s},{item},{10 * s + k}" for k, item in enumerate(items)]
    log = tmp_path / "clicks.csv"
    log.write_text("\n".join(lines) + "\n")
    assert prepare_main(["clicks", "--src", str(log), "--out", str(tmp_path / "out"), "--seed", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "the valid split is empty (6 sessions survive the filters: 34 of 40 sessions removed" in err
    assert "34 holding an item seen fewer than 5 times (--min-item-count 5)" in err
    assert "split into train 5, valid 0, test 1 sessions); lower --min-item-count (1 keeps every item)" in err
    assert err.endswith("or raise --valid-share")
    assert prepare_main(["clicks", "--src", str(log), "--out", str(tmp_path / "o2"), "--min-item-count", "1"]) == 0


def test_split_checks_name_config_fields_from_python(tmp_path):
    """Outside a command the same message names the settings as fields, not flags."""

    class S:
        def __init__(self, items):
            self.items = items

    raw = [S([1, 2]), S([1, 3])]
    with pytest.raises(ValueError, match=r"min_item_count=5\).*raise valid_share$"):
        require_splits("log.csv", [[raw[0]], [], [raw[1]]], raw, raw, 5, protocol="paper")


def test_table1_of_a_click_log_is_headed_by_its_file_and_has_no_empty_paper_column(tmp_path, capsys):
    log, items = _log_with_titles(tmp_path)
    assert prepare_main(["clicks", "--src", str(log), "--items", str(items), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "Table 1, clicks.csv (clicks), --protocol paper" in out
    assert "| statistic | clicks.csv |\n|---|---:|\n" in out and "| clicks | 240 |\n" in out
    assert "paper" not in out.split("\n", 1)[1].split("wrote")[0]  # no paper column, no paper row label
