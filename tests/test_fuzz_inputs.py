"""Issue 24, item 7: property-based tests (Hypothesis) of the readers a user feeds files to.

Each property holds for random bytes and for structured mutations of a valid file: the reader either
returns a result that means what the file says, or raises one of the package's errors
(:class:`~llm4sbr_adapter.errors.Llm4sbrError`) with a one-line message; never another exception.

Budget: every property runs :data:`FAST_EXAMPLES` examples in the default suite (derandomized, so a run
is repeatable) and :data:`SLOW_EXAMPLES` under ``-m slow``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm4sbr_adapter.config import ConfigBase
from llm4sbr_adapter.enhancer import IntentEnhancerConfig
from llm4sbr_adapter.errors import Llm4sbrError
from llm4sbr_adapter.offline.inputs.catalogue import read_catalogue
from llm4sbr_adapter.offline.inputs.clicks import read_click_log
from llm4sbr_adapter.offline.inputs.fields import parse_id
from llm4sbr_adapter.offline.inputs.sessions import read_sessions
from llm4sbr_adapter.offline.inputs.text import InputFormatError
from llm4sbr_adapter.store import IntentStore, StoreMetadata, write_store

FAST_EXAMPLES = 30
SLOW_EXAMPLES = 600
BUDGETS = {
    "fast": settings(max_examples=FAST_EXAMPLES, deadline=None, derandomize=True, database=None),
    "slow": settings(
        max_examples=SLOW_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    ),
}
budget = pytest.mark.parametrize("budget", ["fast", pytest.param("slow", marks=pytest.mark.slow)])


def clean_or_result(read: Callable[[], Any]) -> Any:
    """``read()``'s result, or ``None`` after a clean error (one of ours, one line); anything else fails."""
    try:
        return read()
    except Llm4sbrError as err:
        assert "\n" not in str(err), f"error is not one line: {err!r}"
        assert str(err).strip(), "empty error message"
        return None


def scratch(name: str, data: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="llm4sbr-fuzz-"))
    path = folder / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------- ids
plain_ids = st.text(alphabet=st.characters(categories=("L", "N"), max_codepoint=0x2FF), min_size=1, max_size=6)
int_ids = st.integers(min_value=0, max_value=10**6)
any_ids = st.one_of(int_ids, plain_ids)


def id_text(value: int | str) -> str:
    return str(value)


def expected_id(value: int | str) -> int | str:
    """What a reader makes of an id written as text: canonical integers become ints, the rest NFC strings."""
    text = unicodedata.normalize("NFC", str(value))
    try:
        parsed = int(text)
    except ValueError:
        return text
    return parsed if str(parsed) == text else text


def is_plain_id(value: int | str) -> bool:
    """Ids the text formats carry unambiguously: not spelled as a float or a boolean (refused by design)."""
    try:
        parse_id(str(value))
    except InputFormatError:
        return False
    return True


# ------------------------------------------------------------------------------------------- store
def _valid_store() -> bytes:
    path = Path(tempfile.mkdtemp(prefix="llm4sbr-fuzz-")) / "s.safetensors"
    meta = StoreMetadata(perspectives=["long", "short"], text_dim=3, top_f=0)
    vec = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    write_store(path, ["a", "b", "c", "d"], {"long": vec, "short": -vec}, meta, answers={"long": ["x"] * 4})
    return path.read_bytes()


VALID_STORE = _valid_store()


def _open_and_read(path: Path) -> dict[str, np.ndarray]:
    store = IntentStore.open(path)
    ids = store.to_arrays()["session_ids"].tolist()
    got = store.lookup(ids)
    for name, tensor in got.items():
        assert tuple(tensor.shape) == (len(ids), store.text_dim), name
        assert bool(tensor.isfinite().all()), f"{name}: non-finite values were accepted"
    return {name: t.numpy() for name, t in got.items()}


@budget
def test_store_reader_random_bytes(budget: str) -> None:
    @BUDGETS[budget]
    @given(st.binary(max_size=600))
    def check(data: bytes) -> None:
        clean_or_result(lambda: _open_and_read(scratch("s.safetensors", data)))

    check()


@budget
def test_store_reader_mutated_bytes(budget: str) -> None:
    @BUDGETS[budget]
    @given(
        st.lists(st.tuples(st.integers(0, len(VALID_STORE) - 1), st.integers(0, 255)), min_size=1, max_size=4),
        st.integers(0, len(VALID_STORE)),
    )
    def check(flips: list[tuple[int, int]], cut: int) -> None:
        data = bytearray(VALID_STORE)
        for pos, value in flips:
            data[pos] = value
        clean_or_result(lambda: _open_and_read(scratch("s.safetensors", bytes(data[: max(cut, 1)]))))

    check()


def _header(data: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@budget
def test_store_reader_mutated_header(budget: str) -> None:
    header, body = _header(VALID_STORE)
    tensor_names = sorted(k for k in header if k != "__metadata__")
    meta = json.loads(header["__metadata__"]["llm4sbr"])

    @BUDGETS[budget]
    @given(
        st.sampled_from(tensor_names + ["__metadata__"]),
        st.sampled_from(["dtype", "shape", "data_offsets", "llm4sbr", *sorted(meta)]),
        json_values,
    )
    def check(entry: str, field: str, value: Any) -> None:
        edited = json.loads(json.dumps(header))
        if entry == "__metadata__":
            inner = dict(meta)
            inner[field] = value
            edited["__metadata__"]["llm4sbr"] = json.dumps(inner)
        else:
            edited[entry][field] = value
        head = json.dumps(edited).encode()
        head += b" " * (-len(head) % 8)
        path = scratch("s.safetensors", len(head).to_bytes(8, "little") + head + body)
        result = clean_or_result(lambda: _open_and_read(path))
        if result is not None and entry in ("intent.long", "intent.short") and field == "data_offsets":
            assert value == header[entry]["data_offsets"]  # other offsets must never be accepted

    check()


# ---------------------------------------------------------------------------------------- sessions
sessions_strategy = st.lists(
    st.tuples(any_ids.filter(is_plain_id), st.lists(any_ids.filter(is_plain_id), min_size=1, max_size=5)),
    min_size=1,
    max_size=6,
    unique_by=lambda s: expected_id(s[0]),
)


def _sessions_file(sessions: list, fmt: str) -> bytes:
    if fmt == "jsonl":
        return "".join(json.dumps({"session_id": sid, "items": items}) + "\n" for sid, items in sessions).encode()
    sep = "\t" if fmt == "tsv" else ","
    return "".join(f"{id_text(sid)}{sep}{' '.join(map(id_text, items))}\n" for sid, items in sessions).encode()


@budget
@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_session_reader_round_trip(budget: str, fmt: str) -> None:
    @BUDGETS[budget]
    @given(sessions_strategy)
    def check(sessions: list) -> None:
        path = scratch(f"s.{fmt}", _sessions_file(sessions, fmt))
        got = clean_or_result(lambda: read_sessions(path))
        if fmt == "jsonl":
            want_ids = [sid if isinstance(sid, int) else unicodedata.normalize("NFC", sid) for sid, _ in sessions]
        else:
            want_ids = [expected_id(sid) for sid, _ in sessions]
        if got is None:  # only a first row that is a genuine session-column header may be refused/skipped
            return
        start = len(want_ids) - len(got)
        assert start in (0, 1), (sessions, got.ids)
        assert [str(i) for i in got.ids.tolist()] == [str(i) for i in want_ids[start:]]
        want_items = [[expected_id(i) if fmt != "jsonl" else i for i in items] for _, items in sessions[start:]]
        assert [[str(i) for i in seq] for seq in got.sequences] == [
            [unicodedata.normalize("NFC", str(i)) for i in seq] for seq in want_items
        ]

    check()


@budget
@pytest.mark.parametrize("name", ["s.tsv", "s.csv", "s.jsonl", "s.txt"])
def test_session_reader_random_text(budget: str, name: str) -> None:
    @BUDGETS[budget]
    @given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
    def check(data: bytes) -> None:
        clean_or_result(lambda: read_sessions(scratch(name, data), on_empty="skip"))

    check()


# --------------------------------------------------------------------------------------- catalogue
titles = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=12)
catalogue_strategy = st.lists(
    st.tuples(any_ids.filter(is_plain_id), titles.filter(lambda t: t.strip())),
    min_size=1,
    max_size=6,
    unique_by=lambda r: expected_id(r[0]),
)


def _catalogue_csv(rows: list) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["item_id", "title"])
    for iid, title in rows:
        writer.writerow([id_text(iid), title])
    return out.getvalue().encode()


@budget
def test_catalogue_reader_round_trip(budget: str) -> None:
    @BUDGETS[budget]
    @given(catalogue_strategy)
    def check(rows: list) -> None:
        path = scratch("items.csv", _catalogue_csv(rows))
        cat = clean_or_result(lambda: read_catalogue(path))
        if cat is None:  # a title that cannot be kept (a double quote left open is ours to refuse)
            return
        kept = [(iid, t) for iid, t in rows if " ".join(unicodedata.normalize("NFC", t).split())]
        assert len(cat) == len(kept)
        for iid, title in kept:
            want = " ".join(unicodedata.normalize("NFC", html.unescape(title)).split())
            assert cat.lookup(expected_id(iid)) == want

    check()


@budget
@pytest.mark.parametrize("name", ["items.tsv", "items.csv", "items.jsonl", "u.item"])
def test_catalogue_reader_random_text(budget: str, name: str) -> None:
    @BUDGETS[budget]
    @given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
    def check(data: bytes) -> None:
        clean_or_result(lambda: read_catalogue(scratch(name, data)))

    check()


# --------------------------------------------------------------------------------------- click log
clicks_strategy = st.lists(
    st.tuples(any_ids.filter(is_plain_id), any_ids.filter(is_plain_id), st.integers(0, 2**40)),
    min_size=1,
    max_size=8,
)


@budget
def test_click_log_reader_round_trip(budget: str) -> None:
    @BUDGETS[budget]
    @given(clicks_strategy)
    def check(clicks: list) -> None:
        text = "session_id,item_id,timestamp\n" + "".join(f"{s},{i},{t}\n" for s, i, t in clicks)
        log = clean_or_result(lambda: read_click_log(scratch("c.csv", text.encode())))
        assert log is not None, clicks
        assert [str(i) for i in log.items] == [str(expected_id(i)) for _, i, _ in clicks]
        assert log.times.tolist() == [t for *_, t in clicks]

    check()


@budget
def test_click_log_reader_random_text(budget: str) -> None:
    @BUDGETS[budget]
    @given(st.text(max_size=200), st.sampled_from(["c.csv", "c.tsv"]))
    def check(body: str, name: str) -> None:
        data = ("session_id,item_id,timestamp\n" + body).encode()
        clean_or_result(lambda: read_click_log(scratch(name, data)))

    check()


# ------------------------------------------------------------------------------------------ config
def _saved_config() -> dict:
    path = Path(tempfile.mkdtemp(prefix="llm4sbr-fuzz-")) / "c.json"
    IntentEnhancerConfig(perspectives=("long", "short"), hidden_size=8, text_dim=4).save(path)
    return json.loads(path.read_text())


SAVED_CONFIG = _saved_config()


def _load(path: Path) -> ConfigBase:
    return IntentEnhancerConfig.load(path)


@budget
def test_config_loader_mutated_fields(budget: str) -> None:
    @BUDGETS[budget]
    @given(st.sampled_from(sorted(SAVED_CONFIG) + ["unknown_field"]), json_values)
    def check(field: str, value: Any) -> None:
        edited = dict(SAVED_CONFIG)
        edited[field] = value
        config = clean_or_result(lambda: _load(scratch("c.json", json.dumps(edited).encode())))
        if config is not None and field not in ("format", "format_version") and value is not None:
            # a loaded config means what the file says: the field reads back as written (tuples as lists;
            # null is an optional setting's documented default, and a partial pairing is completed as
            # documented, so only the entries written are compared)
            reread = json.loads(json.dumps(config.to_dict()))[field]
            if field == "pairing":
                assert value.items() <= reread.items()
            else:
                assert reread == value

    check()


@budget
def test_config_loader_random_bytes(budget: str) -> None:
    @BUDGETS[budget]
    @given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
    def check(data: bytes) -> None:
        clean_or_result(lambda: _load(scratch("c.json", data)))

    check()
