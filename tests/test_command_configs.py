"""prepare_data and inspect_store flags generated from their configs (every earlier spelling kept), and the
hints: each names a config field that the running command turns into one of its own flags."""

import ast
import dataclasses
from pathlib import Path

import pytest

import llm4sbr_adapter
from llm4sbr_adapter.build_store import build_parser as build_store_parser
from llm4sbr_adapter.config import ConfigError
from llm4sbr_adapter.config_cli import config_from_args, flag_fields, hint_flags
from llm4sbr_adapter.errors import flag_spelling, setting_hint, setting_name
from llm4sbr_adapter.experiments.data import prepare_data
from llm4sbr_adapter.experiments.data.prepare_config import BeautyConfig, ClicksConfig, MovieLensConfig
from llm4sbr_adapter.inspect_store import InspectConfig
from llm4sbr_adapter.inspect_store import build_parser as inspect_parser
from llm4sbr_adapter.offline.config import BuildConfig
from llm4sbr_adapter.offline.inputs.columns import ROLE_FIELDS, ClickLogConfig

REQUIRED = {"movielens": ["--src", "ml", "--out", "o"], "beauty": ["--src", "b", "--out", "o"]}
REQUIRED["clicks"] = ["--src", "c.csv", "--out", "o"]

PREPARE_FLAGS = [
    ("movielens", ["--protocol", "temporal"], "protocol", "temporal"),
    ("movielens", ["--valid-share", "0.2"], "valid_share", 0.2),
    ("movielens", ["--seed", "3"], "seed", 3),
    ("movielens", ["--test-share", "0.3"], "test_share", 0.3),
    ("movielens", ["--window", "60"], "window", 60),
    ("movielens", ["--encoding", "latin-1"], "encoding", "latin-1"),
    ("movielens", ["--min-item-count", "2"], "min_item_count", 2),
    ("movielens", ["--gap", "30"], "gap", 30),
    ("movielens", ["--split", "0.6", "0.2", "0.2"], "split", (0.6, 0.2, 0.2)),
    ("movielens", ["--split-key", "start"], "split_key", "start"),
    ("beauty", ["--tie-seed", "4"], "tie_seed", 4),
    ("beauty", ["--test-rows", "100"], "test_rows", 100),
    ("beauty", ["--sample-users", "0.5"], "sample_users", 0.5),
    ("beauty", ["--sample-seed", "2"], "sample_seed", 2),
    ("beauty", ["--seed", "1"], "seed", 1),
    ("clicks", ["--items", "i.csv"], "items", "i.csv"),
    ("clicks", ["--session-column", "visit"], "click_log.session_column", "visit"),
    ("clicks", ["--item-column", "sku"], "click_log.item_column", "sku"),
    ("clicks", ["--time-column", "when"], "click_log.time_column", "when"),
    ("clicks", ["--user-column", "who"], "click_log.user_column", "who"),
    ("clicks", ["--log-columns", "session, item,time"], "click_log.log_columns", ("session", "item", "time")),
    ("clicks", ["--gap", "1800"], "click_log.gap", 1800),
    ("clicks", ["--window", "600"], "click_log.window", 600),
    ("clicks", ["--encoding", "latin-1"], "encoding", "latin-1"),
    ("clicks", ["--items-header", "no"], "items_header", "no"),
    ("clicks", ["--rows", "last"], "rows", "last"),
    ("clicks", ["--min-item-count", "1"], "min_item_count", 1),
    ("clicks", ["--split", "0.8", "0.1", "0.1"], "split", (0.8, 0.1, 0.1)),
    ("clicks", ["--split-key", "end"], "split_key", "end"),
    ("clicks", ["--test-share", "0.2"], "test_share", 0.2),
]


def _value(config, path):
    for part in path.split("."):
        config = getattr(config, part)
    return config


@pytest.mark.parametrize(("dataset", "argv", "field", "value"), PREPARE_FLAGS)
def test_every_prepare_data_flag_spelling_sets_its_setting(dataset, argv, field, value):
    args = prepare_data.build_parser().parse_args([dataset, *REQUIRED[dataset], *argv])
    config = config_from_args(prepare_data.CONFIGS[args.dataset], args)
    assert _value(config, field) == value
    assert config.out == "o" and config.src == REQUIRED[dataset][1]


def test_prepare_data_defaults_and_required_flags(capsys):
    config = config_from_args(
        MovieLensConfig, prepare_data.build_parser().parse_args(["movielens", *REQUIRED["movielens"]])
    )
    assert (config.protocol, config.valid_share, config.min_item_count, config.seed) == ("paper", 0.1, 5, None)
    with pytest.raises(SystemExit):
        prepare_data.build_parser().parse_args(["beauty", "--src", "b"])
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        prepare_data.build_parser().parse_args(["clicks", *REQUIRED["clicks"], "--split", "0.5", "0.5"])


def test_prepare_data_config_runs_from_python(tmp_path):
    log = tmp_path / "clicks.csv"
    log.write_text(
        "session_id,item_id,timestamp\n"
        + "".join(f"s{s},{(s + k) % 5 + 1},{10 * s + k}\n" for s in range(40) for k in range(3))
    )
    stats, paper = prepare_data.prepare(ClicksConfig(src=str(log), out=str(tmp_path / "out"), min_item_count=1))
    assert paper is None and stats["clicks"] == 120 and (tmp_path / "out" / "train.txt").is_file()


INSPECT_FLAGS = [
    (["--session", "7"], "session", "7"),
    (["--sessions", "s.tsv"], "sessions", "s.tsv"),
    (["--sessions-format", "clicks"], "sessions_format", "clicks"),
    (["--sessions-encoding", "latin-1"], "sessions_encoding", "latin-1"),
    (["--items", "i.tsv"], "items", "i.tsv"),
    (["--items-encoding", "latin-1"], "items_encoding", "latin-1"),
    (["--json"], "as_json", True),
]


@pytest.mark.parametrize(("argv", "field", "value"), INSPECT_FLAGS)
def test_every_inspect_store_flag_spelling_sets_its_setting(argv, field, value):
    args = inspect_parser().parse_args(["store.safetensors", *argv])
    assert args.store == "store.safetensors"
    assert getattr(config_from_args(InspectConfig, args), field) == value


# Every command whose work runs under flag_spelling, with its parser and its config.
COMMANDS = {
    "build_store": (build_store_parser, BuildConfig),
    "inspect_store": (inspect_parser, InspectConfig),
    **{
        f"prepare_data {c.DATASET}": (prepare_data.build_parser, c)
        for c in (MovieLensConfig, BeautyConfig, ClicksConfig)
    },
}


def _option_strings(parser, dataset=None):
    if dataset is not None:
        sub = next(a for a in parser._actions if a.dest == "dataset")
        parser = sub.choices[dataset]
    return {s for action in parser._actions for s in action.option_strings}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_a_hint_can_name_is_a_flag_of_the_command(command):
    make_parser, cls = COMMANDS[command]
    dataset = command.split()[1] if command.startswith("prepare_data") else None
    assert set(hint_flags(cls).values()) <= _option_strings(make_parser(), dataset)


def _hint_calls():
    """(file, line, field or None) of every setting_hint / setting_name call in the package."""
    root = Path(llm4sbr_adapter.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("setting_hint", "setting_name"):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield path.name, node.lineno, [arg.value]
                elif isinstance(arg, ast.Subscript) and getattr(arg.value, "id", None) == "ROLE_FIELDS":
                    yield path.name, node.lineno, list(ROLE_FIELDS.values())
                else:
                    yield path.name, node.lineno, None


def test_every_hint_names_a_field_that_some_command_has_a_flag_for():
    known = set().union(*(hint_flags(cls) for _, cls in COMMANDS.values()))
    calls = list(_hint_calls())
    assert len(calls) >= 12  # the hints of the readers, the build and prepare_data
    for name, line, fields in calls:
        if fields is None and name == "prepare_data.py":  # a setting of the other protocol, from these tables
            tables = (prepare_data.TEMPORAL_ONLY, prepare_data.PAPER_ONLY)
            fields = [f for table in tables for names in table.values() for f in names]
        assert fields is not None, f"{name}:{line}: a hint names its field as a literal (or via ROLE_FIELDS)"
        for field in fields:
            assert field in known, f"{name}:{line}: {field!r} is no flag of any command"


@pytest.mark.parametrize("dataset", ["movielens", "beauty", "clicks"])
def test_settings_of_one_protocol_are_flags_of_their_subcommand(dataset):
    flags = hint_flags(prepare_data.CONFIGS[dataset])
    assert {*prepare_data.TEMPORAL_ONLY[dataset], *prepare_data.PAPER_ONLY[dataset]} <= set(flags)


def test_role_fields_are_click_log_settings():
    assert set(ROLE_FIELDS.values()) <= {f.name for f in dataclasses.fields(ClickLogConfig)}
    assert {x.field.name for x in flag_fields(BuildConfig)} >= set(ROLE_FIELDS.values())


def test_a_hint_is_python_spelled_outside_a_command_and_where_the_command_lacks_the_setting():
    assert setting_hint("top_f", 3) == "top_f=3" and setting_name("gap") == "gap"
    with flag_spelling(hint_flags(BuildConfig)):
        assert setting_hint("top_f", 3) == "--top-f 3" and setting_name("gap") == "--gap"
        assert setting_hint("tie_seed", 1) == "tie_seed=1"  # prepare_data beauty's, not build_store's
    with flag_spelling(hint_flags(ClicksConfig)):
        assert setting_hint("sessions_encoding", "latin-1") == "--encoding latin-1"


def test_recbole_driver_flags_come_from_its_config():
    from llm4sbr_adapter.experiments.recbole_srgnn import RecBoleRunConfig, build_parser, run_config

    argv = [
        "--data-path",
        "d",
        "--dataset",
        "ml",
        "--model",
        "NARM",
        "--config-file",
        "a.yaml",
        "--config-file",
        "b.yaml",
    ]
    argv += ["--store", "s", "--valid-store", "v", "--epochs", "3", "--fusion", "gate", "--topk", "5", "20"]
    argv += ["--no-progress", "--seed", "7", "--id-field", "eid", "--session-field", "sid", "--loss-weight", "0.5"]
    config = config_from_args(RecBoleRunConfig, build_parser().parse_args(argv))
    assert config.config_file == ("a.yaml", "b.yaml") and config.topk == (5, 20) and not config.progress
    values = run_config(config)
    assert values["intent_store"] == "s" and values["intent_valid_store"] == "v" and "intent_test_store" not in values
    assert values["valid_metric"] == "MRR@20" and values["show_progress"] is False and values["seed"] == 7
    assert values["load_col"] == {"inter": ["sid", "item_id", "timestamp", "eid"]} and values["intent_fusion"] == "gate"
    with pytest.raises(ConfigError, match="need RecBoleRunConfig.store"):
        RecBoleRunConfig("d", "ml", test_store="t")
