"""Issue 24, item 2: files shown beside a store are checked against the store's provenance."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from llm4sbr_adapter.inspect_store import inspect_store
from llm4sbr_adapter.inspect_store import main as inspect_main
from llm4sbr_adapter.offline.inputs.catalogue import read_catalogue
from llm4sbr_adapter.offline.inputs.sessions import read_sessions
from llm4sbr_adapter.provenance import ProvenanceError
from llm4sbr_adapter.store import StoreMetadata, write_store


@pytest.fixture
def built(tmp_path: Path) -> dict[str, Path]:
    files = {
        "sessions": tmp_path / "train.tsv",
        "other_sessions": tmp_path / "test.tsv",
        "items": tmp_path / "items.tsv",
        "other_items": tmp_path / "items_v2.tsv",
    }
    files["sessions"].write_text("1\t1 2\n2\t2 3\n")
    files["other_sessions"].write_text("1\t3 3\n2\t1 1\n")
    files["items"].write_text("1\tApple\n2\tBanana\n3\tCherry\n")
    files["other_items"].write_text("1\tCar\n2\tBike\n3\tBoat\n")
    sess, cat = read_sessions(files["sessions"]), read_catalogue(files["items"])
    meta = StoreMetadata(
        perspectives=["long"], text_dim=4, top_f=0, sessions_sha256=sess.sha256, catalogue_sha256=cat.sha256
    )
    files["store"] = write_store(tmp_path / "s.safetensors", [1, 2], {"long": np.ones((2, 4), np.float32)}, meta)
    return files


def test_the_build_files_are_shown(built: dict[str, Path]) -> None:
    info = inspect_store(built["store"], 1, sessions=built["sessions"], items=built["items"])
    assert [it["title"] for it in info["session"]["items"]] == ["Apple", "Banana"]


@pytest.mark.parametrize(("flag", "other"), [("--sessions", "other_sessions"), ("--items", "other_items")])
def test_another_split_or_catalogue_is_an_error(built: dict[str, Path], capsys, flag: str, other: str) -> None:
    argv = [str(built["store"]), "--session", "1", "--sessions", str(built["sessions"]), "--items", str(built["items"])]
    argv[argv.index(flag) + 1] = str(built[other])
    assert inspect_main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag} {built[other].name} (sha256 ") and err.count("\n") == 1
    assert "--allow-mismatch" in err


def test_allow_mismatch_shows_them_with_one_warning(built: dict[str, Path], caplog) -> None:
    with pytest.raises(ProvenanceError, match="is not the catalogue"):
        inspect_store(built["store"], 1, items=built["other_items"])
    with caplog.at_level(logging.WARNING):
        info = inspect_store(
            built["store"], 1, sessions=built["sessions"], items=built["other_items"], allow_mismatch=True
        )
    assert [it["title"] for it in info["session"]["items"]] == ["Car", "Bike"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "allow_mismatch" in warnings[0].getMessage()
