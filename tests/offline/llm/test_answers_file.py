"""A cache's answers exported as a replay file rebuild the same store without the LLM (issue 22)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from llm4sbr_adapter.build_store import main as build_main
from llm4sbr_adapter.offline import BuildConfig, build_intent_store
from llm4sbr_adapter.offline.llm.answers_file import export_answers, perspective_of
from llm4sbr_adapter.offline.llm.base import GenerationConfig, LLMBackend
from llm4sbr_adapter.offline.llm.cache import AnswerCache
from llm4sbr_adapter.offline.llm.replay import ReplayBackend
from llm4sbr_adapter.store import IntentStore


class SecondTitleLLM(LLMBackend):
    """Answers with the second listed title (or the first), and a word that depends on the qualifier."""

    model_id = "second-title-fake-v1"

    def generate(self, prompts, config):
        out = []
        for p in prompts:
            titles = [line.split(". ", 1)[1].rsplit("_", 1)[0] for line in p.splitlines() if line[:1].isdigit()]
            out.append(("Deluxe " if "long term" in p else "Mini ") + titles[min(1, len(titles) - 1)])
        return out


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "s.tsv").write_text("a\t1 2 3\nb\t4 5\nc\t2 6 7 8\n", encoding="utf-8")
    titles = [
        "red lipstick",
        "matte lipstick",
        "blue mascara",
        "green eyeliner",
        "hair oil",
        "sun cream",
        "face mask",
        "nail polish",
    ]
    (tmp_path / "items.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in enumerate(titles, 1)), encoding="utf-8")
    return tmp_path


def _tensors(path):
    arrays = IntentStore.open(path).to_arrays()
    out = {f"intent.{p}": v for p, v in arrays["intents"].items()}
    for key in ("top_items", "top_weights"):
        out.update({f"{key}.{p}": v for p, v in arrays[key].items()})
    out.update({f"answers.{p}": np.array(v) for p, v in arrays["answers"].items()})
    return out


def test_replay_of_the_exported_answers_rebuilds_the_same_store(files):
    config = BuildConfig(top_f=2, cache_path=str(files / "cache.sqlite3"), progress=False)
    build_intent_store(files / "s.tsv", files / "items.tsv", files / "orig.safetensors", config, llm=SecondTitleLLM())
    path, n = export_answers(files / "cache.sqlite3", files / "answers.jsonl.gz")
    assert n == 6
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    assert [r["prompt_sha256"] for r in lines] == sorted(r["prompt_sha256"] for r in lines)
    assert {r["perspective"] for r in lines} == {"long", "short"} and {r["model_id"] for r in lines} == {
        "second-title-fake-v1"
    }
    again, _ = export_answers(files / "cache.sqlite3", files / "again.jsonl.gz")
    assert again.read_bytes() == path.read_bytes()  # same answers, same bytes

    replay = ReplayBackend(path)
    assert len(replay) == 6
    config = config.replace(cache_path=str(files / "replay_cache.sqlite3"))
    build_intent_store(files / "s.tsv", files / "items.tsv", files / "replayed.safetensors", config, llm=replay)
    orig, replayed = _tensors(files / "orig.safetensors"), _tensors(files / "replayed.safetensors")
    assert orig.keys() == replayed.keys()
    for name in orig:
        np.testing.assert_array_equal(orig[name], replayed[name], err_msg=name)


def test_answers_subcommand_and_a_cache_of_two_models(files, capsys):
    cache = files / "cache.sqlite3"
    with AnswerCache(cache) as c:
        c.put("model-a", "p1 ... the user's long term interests", GenerationConfig(), "x")
        c.put("model-b", "p1 ... the user's long term interests", GenerationConfig(), "y")
    out = files / "a.jsonl.gz"
    assert build_main(["answers", "--cache", str(cache), "--output", str(out)]) == 1
    assert "2 models" in capsys.readouterr().err
    assert build_main(["answers", "--cache", str(cache), "--output", str(out), "--model-id", "model-b"]) == 0
    (record,) = [json.loads(line) for line in gzip.decompress(out.read_bytes()).decode().splitlines()]
    assert record["answer"] == "y" and record["perspective"] == "long"


def test_perspective_of_reads_the_request_line_only():
    assert perspective_of("1. The long term plan_4\nJudging from the user's short term interests, name one") == "short"
    assert perspective_of("1. x_1\nname one item") is None


class CountingSecondTitleLLM(SecondTitleLLM):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def generate(self, prompts, config):
        self.asked.extend(prompts)
        return super().generate(prompts, config)


def test_a_new_machine_resumes_from_the_exported_answers(files):
    # the first machine answered sessions a and b only (a build on the first two rows), then exported
    (files / "ab.tsv").write_text("a\t1 2 3\nb\t4 5\n", encoding="utf-8")
    first = BuildConfig(top_f=2, cache_path=str(files / "first.sqlite3"), progress=False)
    build_intent_store(files / "ab.tsv", files / "items.tsv", files / "ab.safetensors", first, llm=SecondTitleLLM())
    export_answers(files / "first.sqlite3", files / "ab.jsonl.gz")
    # a new machine (empty cache) builds all three sessions: only session c's two prompts reach the model
    llm = CountingSecondTitleLLM()
    config = first.replace(cache_path=str(files / "new.sqlite3"), seed_answers=str(files / "ab.jsonl.gz"))
    report = build_intent_store(files / "s.tsv", files / "items.tsv", files / "all.safetensors", config, llm=llm)
    assert len(llm.asked) == 2 and all("green eyeliner" not in p and "face mask" in p for p in llm.asked)
    assert report.asked == 2 and report.cached == 4
    reference = build_intent_store(
        files / "s.tsv",
        files / "items.tsv",
        files / "ref.safetensors",
        first.replace(cache_path=str(files / "r.sqlite3")),
        llm=SecondTitleLLM(),
    )
    assert reference.asked == 6
    orig, resumed = _tensors(files / "ref.safetensors"), _tensors(files / "all.safetensors")
    for name in orig:
        np.testing.assert_array_equal(orig[name], resumed[name], err_msg=name)


def test_answers_of_another_model_are_refused(files):
    config = BuildConfig(top_f=2, cache_path=str(files / "cache.sqlite3"), progress=False)
    build_intent_store(files / "s.tsv", files / "items.tsv", files / "o.safetensors", config, llm=SecondTitleLLM())
    export_answers(files / "cache.sqlite3", files / "a.jsonl.gz")

    class Other(SecondTitleLLM):
        model_id = "another-model"

    with pytest.raises(ValueError, match="second-title-fake-v1.*another-model"):
        build_intent_store(
            files / "s.tsv",
            files / "items.tsv",
            files / "x.safetensors",
            config.replace(cache_path=str(files / "fresh.sqlite3"), seed_answers=str(files / "a.jsonl.gz")),
            llm=Other(),
        )
