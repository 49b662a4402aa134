"""Every setting of a build, declared once: :class:`BuildConfig`.

The Python API (``build_intent_store(..., config=None, **overrides)``) and the command line
(``python -m llm4sbr_adapter.build_store``, whose flags are generated from these fields) read the same
declarations: a default, a help text, choices (``Literal``) and bounds. A bad value is refused when
the config is made, before anything is read or loaded, with the field named (the CLI names the flag).

Two settings may also hold a Python object: ``llm`` (an :class:`LLMBackend`) and ``encoder`` (a
:class:`TextEncoder`). The command line gives their text form (a spec, a folder); the object form is
for Python callers who built one already. A config with an object cannot be re-run from its JSON:
:meth:`BuildConfig.to_dict` records the object's class and name there, and loading that back is an
error saying so.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from ..config import ConfigBase, setting
from ..store import BUILD_DTYPE
from .encode import TextEncoder
from .inputs.columns import ClickLogConfig
from .llm.base import GenerationConfig, LLMBackend
from .prompts import DEFAULT_MAX_ITEMS, DEFAULT_PERSPECTIVES, Perspective, is_perspectives_file, named_perspectives

__all__ = ["DEFAULT_TOP_F", "BuildConfig", "parse_shard"]

# The LLM4SBR authors' released intent-localization script averages the 5 most similar titles, so 5
# is our default f (the paper's text does not pin one value for every dataset).
DEFAULT_TOP_F = 5

_INPUTS = "inputs"
_MODELS = "models"
_PROMPTS = "prompts"
_LOCALIZE = "localization and store"
_RUN = "caching, sharding, logging"
_OBJECT_MARK = "<python object "


def parse_shard(value: str | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """``"K/N"`` or ``(K, N)`` -> ``(K, N)`` with ``0 <= K < N``; ``None`` (or ``""``) stays ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            k_text, n_text = value.split("/")
            k, n = int(k_text), int(n_text)
        except ValueError:
            raise ValueError(f"must look like K/N (e.g. 0/4), got {value!r}") from None
    else:
        k, n = (int(v) for v in value)
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"K/N needs 0 <= K < N, got {k}/{n}")
    return k, n


@dataclasses.dataclass
class BuildConfig(ConfigBase):
    """Every setting of a build; the flag of a field is ``--field-name`` unless noted."""

    FORMAT: ClassVar[str] = "llm4sbr_build_config"

    # ---- inputs (apply when sessions / catalogue are given as files) ---------------------
    sessions_format: Literal["auto", "pickle", "tsv", "csv", "jsonl", "clicks"] = setting(
        "auto",
        "format of --sessions: auto picks by extension; a pickle header is trusted only in "
        ".pkl/.pickle/.txt files, other pickles need --sessions-format pickle; a CSV/TSV whose header names "
        "an item and a time column, or a .parquet file, is a click log (clicks; its columns: see below).",
        group=_INPUTS,
    )
    clicks_target: Literal["last", "none"] = setting(
        "last",
        "click log: hold each session's last click out of its prompt as the target (last: the prompt never "
        "shows the item a next-click model predicts), or show every click (none).",
        group=_INPUTS,
    )
    sessions_encoding: str = setting(
        "utf-8", "text encoding of a TSV/CSV/JSONL --sessions file.", metavar="ENCODING", group=_INPUTS
    )
    on_empty_session: Literal["error", "skip"] = setting(
        "error", "a session with no items: stop with an error or skip it.", group=_INPUTS
    )
    items_encoding: str = setting(
        "utf-8", "text encoding of --items (latin-1 for MovieLens u.item).", metavar="ENCODING", group=_INPUTS
    )
    items_header: Literal["auto", "yes", "no"] = setting(
        "auto",
        "does --items start with a header row (auto: when its id or title field is a common column "
        "name such as item_id, item ID, itemId, id, title or name).",
        group=_INPUTS,
    )

    # ---- models ------------------------------------------------------------------------
    llm: str | LLMBackend = setting(
        "default",
        "LLM backend: 'default' (embedded Qwen2.5-Coder-0.5B-Instruct GGUF, CPU), 'hf:PATH' "
        "(a Hugging Face folder or a .gguf file, run by transformers in float32), 'llamacpp:PATH.gguf' or "
        "'llamacpp:default' (the GGUF run quantised by llama.cpp, several times faster on a CPU; "
        "needs pip install llama-cpp-python), 'openai:URL#MODEL' (an OpenAI-compatible "
        "server such as vLLM, e.g. openai:http://localhost:8000/v1#Qwen/Qwen2.5-7B-Instruct), "
        "'replay:JSONL' (answers produced elsewhere), or 'py:MODULE:FACTORY' (a function "
        "returning an LLMBackend). Python also takes an LLMBackend instance.",
        metavar="SPEC",
        group=_MODELS,
    )
    encoder: str | TextEncoder | None = setting(
        None,
        "text encoder: a local Hugging Face folder (mean pooling); default all-MiniLM-L6-v2 (384-d). "
        "Python also takes a TextEncoder instance.",
        metavar="PATH",
        group=_MODELS,
    )
    device: str = setting("cpu", "torch device for the local LLM and the encoder, e.g. cpu or cuda:0.", group=_MODELS)
    threads: int = setting(
        0,
        "CPU threads for a local LLM (llama.cpp or transformers) and the encoder; 0 = all cores. "
        "Lower it to leave cores to other jobs.",
        minimum=0,
        group=_MODELS,
    )
    generation: GenerationConfig = setting(
        default_factory=GenerationConfig,
        help="how answers are generated (its fields are the flags --max-new-tokens and --temperature).",
        group=_MODELS,
    )
    batch_size: int = setting(
        8, "prompts per LLM call and per answer-cache commit (32-128 for a GPU server).", minimum=1, group=_MODELS
    )
    llm_parallel: int = setting(
        1,
        "prompts a llamacpp: backend decodes at once (greedy answers only): one decode call carries every "
        "live prompt's next token, and prompts sharing an opening read it once. 1 = one at a time; an answer "
        "may then differ in a rare near-tie (docs/results.md). Useful up to --batch-size.",
        minimum=1,
        metavar="N",
        group=_MODELS,
    )
    request_timeout: float | None = setting(
        None,
        "seconds each HTTP request to an openai: server may take before it is retried (default 60; must be > 0).",
        minimum=0.0,
        exclusive_minimum=True,
        metavar="SECONDS",
        group=_MODELS,
    )

    # ---- prompts -----------------------------------------------------------------------
    perspectives: str | tuple[Perspective, ...] = setting(
        ",".join(p.name for p in DEFAULT_PERSPECTIVES),
        "built-in perspectives, comma-separated: long, short (the same listing as long, qualifier 'short term', "
        "as in the paper) or short_last5 (stored as short: only the last 5 items); or a JSON file (also "
        "--perspectives-file) with a list of {name, qualifier, template, last_n}, templates using {items} and "
        "{qualifier}. Python also takes a list of Perspective.",
        flag="--perspectives",
        aliases=("--perspectives-file",),
        metavar="NAMES|JSON",
        group=_PROMPTS,
    )
    max_items: int = setting(
        DEFAULT_MAX_ITEMS, "keep only a session's most recent N items in prompts.", minimum=1, group=_PROMPTS
    )
    item_ids: bool = setting(
        True,
        "show each item as Title_ItemID, as the paper does (--no-item-ids: the title alone). Ids mean nothing to "
        "an LLM, cost tokens, and tie the prompts to one preparation's id numbering: without them, splits "
        "prepared with other seeds ask the same prompts, and one answer cache serves them all.",
        group=_PROMPTS,
    )
    candidate_sessions: str | None = setting(
        None,
        "sessions file (e.g. the training split) whose item transitions propose the candidates a template's "
        "{candidates} lists (presets long_candidates, short_candidates); one row per session.",
        metavar="FILE",
        group=_PROMPTS,
    )
    num_candidates: int = setting(10, "candidates listed by a {candidates} template.", minimum=1, group=_PROMPTS)
    on_missing_title: Literal["error", "skip_item", "id_only"] = setting(
        "error",
        "a session item without a catalogue title: stop with an error naming it, "
        "leave it out of the prompt (skip_item), or show its bare id (id_only).",
        group=_PROMPTS,
    )
    export_prompts: str | None = setting(
        None,
        "also write every prompt (session_id, perspective, prompt, prompt_sha256) as JSONL, "
        "to answer with an LLM elsewhere and come back with --llm replay:ANSWERS.jsonl.",
        metavar="JSONL",
        group=_PROMPTS,
    )
    dry_run: bool = setting(
        False,
        "render prompts, print a few and the counts, and stop: no LLM is loaded, no store written.",
        group=_PROMPTS,
    )

    # ---- localization and store --------------------------------------------------------
    top_f: int = setting(
        DEFAULT_TOP_F,
        "snap each answer to its f most similar catalogue titles (0 stores the raw answer embedding).",
        minimum=0,
        group=_LOCALIZE,
    )
    softmax_temperature: float = setting(
        1.0, "temperature of the softmax over the top-f cosines.", minimum=0.0, exclusive_minimum=True, group=_LOCALIZE
    )
    index: Literal["flat", "hnsw", "ivf"] = setting(
        "flat",
        "FAISS index over the catalogue: exact 'flat' or approximate hnsw / ivf for very large catalogues.",
        group=_LOCALIZE,
    )
    exclude_session_items: bool = setting(
        False,
        "snap answers only to items that are not in the session itself (all of its items, shown or not). "
        "Domain knowledge: right where users do not repeat items (a MovieLens user rates a movie once, a "
        "Beauty user reviews a product once), wrong where they do (re-purchases, replays).",
        group=_LOCALIZE,
    )
    on_empty_answer: Literal["session_mean", "raw", "error"] = setting(
        "session_mean",
        "an answer that is empty after cleaning: use the mean title embedding of the items "
        "the prompt showed (session_mean), embed the raw completion (raw), or stop (error).",
        group=_LOCALIZE,
    )
    dtype: Literal["float16", "float32"] = setting(
        BUILD_DTYPE,
        "dtype of the stored intent vectors (float16: half the disk and memory; training computes in float32 "
        "either way). float32 keeps full precision.",
        group=_LOCALIZE,
    )

    # ---- caching, sharding -------------------------------------------------------------
    cache_path: str | None = setting(
        None,
        "answer cache (SQLite); default <output>.answers.sqlite3. Re-running a killed build "
        "with the same cache asks only the prompts not answered yet.",
        flag="--cache",
        metavar="SQLITE",
        group=_RUN,
    )
    seed_answers: str | None = setting(
        None,
        "answers file written by 'build_store answers' (.jsonl.gz): prompts it answers (same model and generation "
        "settings) go into the answer cache first, so a build on a new machine asks the LLM only the rest.",
        metavar="JSONL",
        group=_RUN,
    )
    item_cache_dir: str | None = setting(
        None,
        "folder caching catalogue embeddings (default: llm4sbr_item_cache beside --output).",
        metavar="DIR",
        group=_RUN,
    )
    shard: tuple[int, int] | None = setting(
        None,
        "build only shard K of N (contiguous blocks of sessions, K from 0); join the N "
        "outputs with the merge subcommand. Python also takes (K, N).",
        parse=parse_shard,
        metavar="K/N",
        group=_RUN,
    )
    progress: bool = setting(True, "show progress bars.", group=_RUN)

    # ---- click logs --------------------------------------------------------------------
    click_log: ClickLogConfig = setting(
        default_factory=ClickLogConfig,
        help="how a click log given as --sessions is read (its fields are the flags --session-column, "
        "--item-column, --time-column, --user-column, --log-columns, --gap and --window).",
        group="click logs",
    )

    def validate(self) -> None:
        """Normalise the forms Python accepts (paths, ``"K/N"``, perspective lists) and refuse the rest."""
        if self.generation is None:  # the default generation settings
            self.generation = GenerationConfig()
        if self.click_log is None:
            self.click_log = ClickLogConfig()
        try:
            self.shard = parse_shard(self.shard)  # text was parsed already; this checks (K, N) given as numbers
        except (TypeError, ValueError) as err:
            self.fail("shard", str(err))
        self.llm = self._text_or(self.llm, "llm", LLMBackend, "a spec string or an LLMBackend")
        self.encoder = self._text_or(self.encoder, "encoder", TextEncoder, "a model folder or a TextEncoder")
        self.perspectives = self._perspectives(self.perspectives)

    def _text_or(self, value: Any, name: str, kind: type, what: str) -> Any:
        if value is None and name == "encoder":
            return None
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, str) and value.startswith(_OBJECT_MARK):
            self.fail(name, f"was a Python object ({value}) when this config was saved; pass the object again")
        if not isinstance(value, (str, kind)):
            self.fail(name, f"must be {what}, got {type(value).__name__}")
        return value

    def _perspectives(self, value: Any) -> str | tuple[Perspective, ...]:
        """Preset names (checked here), a JSON file (read by the build), or a checked list of Perspective."""
        if value is None:
            return ",".join(p.name for p in DEFAULT_PERSPECTIVES)
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, str):
            if not is_perspectives_file(value):
                try:
                    named_perspectives(value)
                except ValueError as err:
                    self.fail("perspectives", str(err))
            return value
        return self._perspective_list(value)

    def _perspective_list(self, value: Any) -> tuple[Perspective, ...]:
        try:
            out = tuple(Perspective(**p) if isinstance(p, Mapping) else p for p in value)
        except (TypeError, ValueError) as err:
            self.fail("perspectives", f"has a bad entry: {err}")
        if not all(isinstance(p, Perspective) for p in out):
            self.fail("perspectives", "must be a JSON file or a list of Perspective")
        names = [p.name for p in out]
        if not out or len(set(names)) != len(names):
            self.fail("perspectives", f"must be a non-empty list with unique names, got {names}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values; an object in ``llm``/``encoder`` is recorded by class and name only. ``click_log``
        is left out at its default (loading restores it), so a build from a session file records the same
        settings, and writes the same store, as before the click-log settings joined this config."""
        out = super().to_dict()
        if self.click_log.is_default():
            del out["click_log"]
        for name in ("llm", "encoder"):
            value = getattr(self, name)
            if not (value is None or isinstance(value, str)):
                label = getattr(value, "model_id", None) or getattr(value, "name", "")
                out[name] = f"{_OBJECT_MARK}{type(value).__name__}: {label}>"
        return out
