"""Issue 24, item 1: an output never replaces an input, and an unwritable output is refused before any work.

Every writing command is tried with an output spelled as one of its inputs (relative, ``..``, symbolic
link, hard link); the input must be byte-for-byte intact, the exit status non-zero and the message one
line naming the flag.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llm4sbr_adapter.build_store import main as build_main
from llm4sbr_adapter.experiments.baselines import main as baselines_main
from llm4sbr_adapter.experiments.data.prepare_data import main as prepare_main
from llm4sbr_adapter.experiments.data.shuffle_store import main as shuffle_main
from llm4sbr_adapter.experiments.data.split_sample import main as sample_main
from llm4sbr_adapter.experiments.data.text_mean_store import build_text_mean_stores
from llm4sbr_adapter.experiments.evaluation import summarize, table2
from llm4sbr_adapter.experiments.evaluation.intent_quality import main as quality_main
from llm4sbr_adapter.experiments.training.train import main as train_main
from llm4sbr_adapter.offline import build_intent_store
from llm4sbr_adapter.output_paths import OutputPathError, check_output_folder, check_writes

SESSIONS = "s1\t1 2 3\ns2\t2 3\n"
ITEMS = "1\tApple\n2\tBanana\n3\tCherry\n"


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    sessions, items = tmp_path / "s.tsv", tmp_path / "items.tsv"
    sessions.write_text(SESSIONS)
    items.write_text(ITEMS)
    return sessions, items


def spellings(tmp_path: Path, target: Path) -> list[str]:
    """Other names of ``target``: relative, with ``..`` and ``.``, absolute, a symbolic link, a hard link."""
    link, hard = tmp_path / "link.tsv", tmp_path / "hard.tsv"
    link.symlink_to(target)
    os.link(target, hard)
    return [target.name, f"sub/../{target.name}", f"./{target.name}", str(target), str(link), str(hard)]


def test_check_writes_sees_every_spelling_of_an_input(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    _, items = inputs
    for name in spellings(tmp_path, items):
        with pytest.raises(OutputPathError, match=r"^--output .* is the same file as --items .*choose another"):
            check_writes({"--output": name}, {"--items": "items.tsv"})
    check_writes({"--output": "other.safetensors"}, {"--items": "items.tsv"})  # a different file is fine


def test_two_outputs_of_one_call_differ(inputs: tuple[Path, Path]) -> None:
    with pytest.raises(OutputPathError, match="--cache out.x is the same file as --output ./out.x"):
        check_writes({"--output": "./out.x", "--cache": "out.x"})


def test_unwritable_outputs_are_refused(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match=r"^--output sub is a folder"):
        check_writes({"--output": "sub"})
    with pytest.raises(OutputPathError, match=r"^--output items.tsv/x.safetensors: .*items.tsv is a file"):
        check_writes({"--output": "items.tsv/x.safetensors"})
    with pytest.raises(OutputPathError, match=r"^--output /proc/x.json: cannot write in folder /proc"):
        check_writes({"--output": "/proc/x.json"})
    with pytest.raises(OutputPathError, match=r"^--out items.tsv is a file, not a folder"):
        check_output_folder("--out", "items.tsv")
    check_writes({"--output": "new/deeper/x.safetensors"})  # a missing folder is created by the write
    assert not (tmp_path / "new").exists()  # ... but not by the check
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".llm4sbr-write-check")]


@pytest.mark.parametrize(
    "extra",
    [
        ["--output", "items.tsv"],
        ["--output", "sub/../s.tsv"],
        ["--output", "out.safetensors", "--cache", "items.tsv"],
        ["--output", "out.safetensors", "--export-prompts", "./s.tsv"],
        ["--dry-run", "--export-prompts", "hard.tsv"],
        ["--output", "link.tsv"],
    ],
)
def test_build_store_never_replaces_an_input(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str]
) -> None:
    spellings(tmp_path, inputs[1])  # link.tsv and hard.tsv name items.tsv
    code = build_main(["--sessions", "s.tsv", "--items", "items.tsv", "--llm", "replay:none.jsonl", *extra])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: --") and err.count("\n") == 1, err
    assert "is the same file as" in err
    assert inputs[0].read_text() == SESSIONS and inputs[1].read_text() == ITEMS


def test_build_store_refuses_a_folder_output_before_any_model(
    inputs: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    # --llm names a module that does not exist: the check must come first
    code = build_main(["--sessions", "s.tsv", "--items", "items.tsv", "--output", "sub", "--llm", "py:nope:make"])
    assert code == 1 and capsys.readouterr().err == "error: --output sub is a folder: give a file path\n"


def test_library_build_names_parameters(inputs: tuple[Path, Path]) -> None:
    with pytest.raises(OutputPathError, match="^output items.tsv is the same file as catalogue items.tsv"):
        build_intent_store("s.tsv", "items.tsv", "items.tsv", llm="replay:none.jsonl")


def test_merge_never_replaces_a_shard(inputs: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    code = build_main(["merge", "--output", "./s.tsv", "s.tsv", "items.tsv"])
    assert code == 1 and "error: --output ./s.tsv is the same file as SHARD s.tsv" in capsys.readouterr().err
    assert Path("s.tsv").read_text() == SESSIONS


def test_train_out_never_replaces_data_or_store(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.txt", "test.txt"):
        (data / name).write_bytes(b"keep")
    code = train_main(["--data", str(data), "--out", str(data / "train.txt"), "--epochs", "1"])
    assert code == 1 and "error: --out " in capsys.readouterr().err
    store = tmp_path / "st.safetensors"
    store.write_bytes(b"keep")
    # the ranks file of --out x.json is x.ranks.npz: an input there is refused too
    ranks_twin = tmp_path / "st.ranks.npz"
    ranks_twin.symlink_to(store)
    code = train_main(["--data", str(data), "--out", str(tmp_path / "st.json"), "--store-train", str(store)])
    assert code == 1 and "--out (ranks file)" in capsys.readouterr().err
    assert (data / "train.txt").read_bytes() == b"keep" and store.read_bytes() == b"keep"


def test_prepare_data_never_replaces_its_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "items.tsv"  # a click log that happens to be called items.tsv, in the output folder
    src.write_text("session_id,item_id,timestamp\n1,1,1\n")
    code = prepare_main(["clicks", "--src", str(src), "--out", str(tmp_path)])
    assert code == 2 and "--out (items.tsv)" in capsys.readouterr().err
    assert src.read_text().startswith("session_id")


def test_text_mean_store_refuses_a_file_as_out(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("keep")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        build_text_mean_stores(tmp_path, tmp_path / "out")


def test_baselines_refuse_a_file_as_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "runs").write_text("keep")
    assert baselines_main(["--data", str(tmp_path), "--runs", str(tmp_path / "runs"), "--models", "pop"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "runs").read_text() == "keep"


@pytest.mark.parametrize("tool", [summarize, table2])
def test_json_reports_never_replace_a_run(tool, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "srgnn_s0.json"
    run.write_text(json.dumps({"keep": 1}))
    flag = "--runs" if tool is summarize else "--results"
    with pytest.raises(SystemExit) as exit_:
        tool.main([flag, str(tmp_path), "--json", str(tmp_path / "." / "srgnn_s0.json")])
    assert exit_.value.code == 2 and "is the same file as" in capsys.readouterr().err
    assert json.loads(run.read_text()) == {"keep": 1}


def test_answers_export_never_replaces_its_cache(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "c.sqlite3"
    cache.write_bytes(b"keep")
    assert build_main(["answers", "--cache", str(cache), "--output", str(tmp_path / "." / "c.sqlite3")]) == 1
    assert "error: --output " in capsys.readouterr().err and cache.read_bytes() == b"keep"


def test_shuffle_store_sees_a_hard_link_of_its_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "s.safetensors"
    store.write_bytes(b"keep")
    os.link(store, tmp_path / "twin.safetensors")
    assert shuffle_main(["--store", str(store), "--out", str(tmp_path / "twin.safetensors")]) == 1
    assert "is the same file as --store" in capsys.readouterr().err and store.read_bytes() == b"keep"


def test_split_sample_and_intent_quality_never_replace_inputs(tmp_path: Path, capsys) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "valid.txt").write_bytes(b"keep")
    (data / "rows_s1.tsv").symlink_to(data / "valid.txt")  # the sample's rows file would land on valid.txt
    assert sample_main(["--data", str(data), "--name", "s1", "--split", "valid"]) == 1
    assert "--name " in capsys.readouterr().err and (data / "valid.txt").read_bytes() == b"keep"
    store = tmp_path / "st.safetensors"
    store.write_bytes(b"keep")
    assert quality_main(["--data", str(data), "--store", str(store), "--json", str(store)]) == 1
    assert "error: --json " in capsys.readouterr().err and store.read_bytes() == b"keep"


def test_a_file_where_the_item_cache_folder_goes_is_refused_first(
    inputs: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    Path("llm4sbr_item_cache").write_text("keep")  # the default folder's place, beside --output
    code = build_main(["--sessions", "s.tsv", "--items", "items.tsv", "--output", "o.safetensors", "--llm", "py:no:x"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: --item-cache-dir llm4sbr_item_cache is a file"), err
