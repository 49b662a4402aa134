"""BuildConfig: each build setting declared once; the build_store CLI and build_intent_store read it."""

from __future__ import annotations

import pytest

from llm4sbr_adapter.build_store import build_parser
from llm4sbr_adapter.build_store import main as build_main
from llm4sbr_adapter.config import ConfigError
from llm4sbr_adapter.config_cli import config_from_args
from llm4sbr_adapter.offline import BuildConfig, Perspective, build_intent_store
from llm4sbr_adapter.offline.llm.base import GenerationConfig, LLMBackend

# Every flag spelling the CLI had before BuildConfig generated it, with a value and the setting it sets.
OLD_FLAGS = [
    (["--sessions-format", "jsonl"], "sessions_format", "jsonl"),
    (["--sessions-format", "clicks"], "sessions_format", "clicks"),
    (["--clicks-target", "none"], "clicks_target", "none"),
    (["--items-header", "no"], "items_header", "no"),
    (["--sessions-encoding", "latin-1"], "sessions_encoding", "latin-1"),
    (["--items-encoding", "latin-1"], "items_encoding", "latin-1"),
    (["--on-empty-session", "skip"], "on_empty_session", "skip"),
    (["--llm", "replay:a.jsonl"], "llm", "replay:a.jsonl"),
    (["--encoder", "enc"], "encoder", "enc"),
    (["--device", "cuda:0"], "device", "cuda:0"),
    (["--threads", "2"], "threads", 2),
    (["--max-new-tokens", "7"], "generation", GenerationConfig(max_new_tokens=7)),
    (["--temperature", "0.5"], "generation", GenerationConfig(temperature=0.5)),
    (["--batch-size", "64"], "batch_size", 64),
    (["--llm-parallel", "8"], "llm_parallel", 8),
    (["--request-timeout", "2.5"], "request_timeout", 2.5),
    (["--perspectives-file", "p.json"], "perspectives", "p.json"),
    (["--perspectives", "long,short_last5"], "perspectives", "long,short_last5"),
    (["--max-items", "9"], "max_items", 9),
    (["--on-missing-title", "id_only"], "on_missing_title", "id_only"),
    (["--export-prompts", "p.jsonl"], "export_prompts", "p.jsonl"),
    (["--dry-run"], "dry_run", True),
    (["--top-f", "0"], "top_f", 0),
    (["--softmax-temperature", "0.1"], "softmax_temperature", 0.1),
    (["--index", "hnsw"], "index", "hnsw"),
    (["--on-empty-answer", "raw"], "on_empty_answer", "raw"),
    (["--dtype", "float16"], "dtype", "float16"),
    (["--cache", "c.sqlite3"], "cache_path", "c.sqlite3"),
    (["--item-cache-dir", "d"], "item_cache_dir", "d"),
    (["--shard", "1/4"], "shard", (1, 4)),
    (["--no-progress"], "progress", False),
]


@pytest.mark.parametrize("argv,field,value", OLD_FLAGS, ids=[a[0] for a, _, _ in OLD_FLAGS])
def test_every_old_flag_spelling_sets_its_setting(argv, field, value):
    config = config_from_args(BuildConfig, build_parser().parse_args(argv))
    assert getattr(config, field) == value
    assert config.replace(**{field: getattr(BuildConfig(), field)}) == BuildConfig()  # nothing else changed


def test_no_flags_give_the_python_defaults():
    assert config_from_args(BuildConfig, build_parser().parse_args([])) == BuildConfig()


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--top-f", "-1"], "argument --top-f: must be >= 0, got -1"),
        (["--request-timeout", "inf"], "argument --request-timeout: must be a finite number, got inf"),
        (["--softmax-temperature", "0"], "argument --softmax-temperature: must be > 0.0"),
        (["--shard", "3/2"], "argument --shard: K/N needs 0 <= K < N, got 3/2"),
        (["--max-new-tokens", "0"], "argument --max-new-tokens: must be >= 1, got 0"),
        (["--llm-parallel", "0"], "argument --llm-parallel: must be >= 1, got 0"),
        (["--index", "tree"], "argument --index: invalid choice: 'tree'"),
        (["--perspectives", "long,medium"], "--perspectives perspectives 'long,medium': unknown preset(s) ['medium']"),
    ],
)
def test_a_bad_setting_is_a_one_line_usage_error_naming_the_flag(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        build_main(["--demo", "--dry-run", *argv])
    assert exc.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines


def test_python_overrides_are_checked_before_anything_is_read(tmp_path):
    missing = tmp_path / "none.tsv"
    with pytest.raises(ConfigError, match=r"unknown BuildConfig settings \['topf'\] \(did you mean 'top_f'\?\)"):
        build_intent_store(missing, missing, None, topf=3)
    with pytest.raises(ConfigError, match=r"BuildConfig.on_empty_answer must be one of"):
        build_intent_store(missing, missing, None, on_empty_answer="mean")
    with pytest.raises(ConfigError, match=r"BuildConfig.llm must be a spec string or an LLMBackend, got int"):
        build_intent_store(missing, missing, None, llm=3)
    with pytest.raises(ConfigError, match=r"BuildConfig.shard K/N needs 0 <= K < N, got 2/2"):
        BuildConfig(shard="2/2")
    with pytest.raises(ConfigError, match=r"BuildConfig.shard K/N needs 0 <= K < N, got 2/2"):
        BuildConfig(shard=(2, 2))
    with pytest.raises(ConfigError, match=r"BuildConfig.shard must look like K/N \(e.g. 0/4\), got 'x'"):
        BuildConfig(shard="x")
    with pytest.raises(ConfigError, match=r"non-empty list with unique names"):
        BuildConfig(perspectives=[Perspective("a", "x"), Perspective("a", "y")])


def test_python_forms_are_normalised_and_round_trip_through_json(tmp_path):
    config = BuildConfig(
        shard="1/3",
        cache_path=tmp_path / "c.sqlite3",
        perspectives=[Perspective("recent", "recent", last_n=2)],
        generation=GenerationConfig(max_new_tokens=4, stop=("\n",)),
    )
    assert config.shard == (1, 3) and config.cache_path == str(tmp_path / "c.sqlite3")
    assert BuildConfig.load(config.save(tmp_path / "build.json")) == config
    assert BuildConfig(generation=None).generation == GenerationConfig()


def test_an_llm_object_is_recorded_by_name_and_cannot_be_loaded_back():
    class Fake(LLMBackend):
        model_id = "fake-v1"

        def generate(self, prompts, config):
            return ["x"] * len(prompts)

    payload = BuildConfig(llm=Fake()).to_payload()
    assert payload["llm"] == "<python object Fake: fake-v1>"
    with pytest.raises(ConfigError, match=r"BuildConfig.llm was a Python object .* pass the object again"):
        BuildConfig.from_dict(payload)
