"""Local generation with Hugging Face transformers: a model folder or a single GGUF file.

A GGUF file is read by transformers (``gguf_file=``), which dequantises the weights and converts the
embedded tokenizer. The dequantised weights are rounded to float16 (:data:`STORED_DTYPE`; a GGUF's
4-6 bit weights lose next to nothing), and that first conversion is slow (tens of seconds for a 0.5B
model), so by default the converted model is saved once as a normal HF folder next to the GGUF file
(``<name>.gguf.hf-float16/``, about 1 GB for a 0.5B model, half a float32 copy; written to a temporary
folder then renamed) and later loads read that, converting to the compute dtype in memory. Weights
are rounded the same way whether or not the folder is written, so answers never depend on it. The
folder's stamp records the GGUF's content sha256, so a GGUF replaced by other weights of the same
name and size is converted again.

``quantize="int8"`` replaces every ``nn.Linear`` (the output layer included) by PyTorch's dynamic
int8 kernels after loading (see :mod:`.int8`): on a CPU about 1.8x faster, but answers depend on the batch.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from ...progress import transformers_bars
from ..model_hash import folder_sha256, stamped_sha256
from .base import GenerationConfig, LLMBackend, LLMError, truncate_at_stop
from .gguf_once import read_gguf_once
from .int8 import quantize_linear_int8
from .prefix_groups import PrefixGroup, prefix_groups

__all__ = ["TransformersBackend", "dequantised_gguf_folder"]

logger = logging.getLogger(__name__)

# End-of-turn markers of common chat formats; added to the EOS set when the tokenizer knows them.
_END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
_CONVERTED_STAMP = "llm4sbr_converted_from.json"
#: Precision of a GGUF's dequantised weights, in memory and in the converted folder on disk.
STORED_DTYPE_NAME = "float16"


def _resolve_dtype(dtype: Any, device: str):
    if dtype is None:
        return torch.float32 if device == "cpu" else torch.bfloat16
    if isinstance(dtype, str):
        try:
            return getattr(torch, dtype)
        except AttributeError:
            raise ValueError(f"unknown torch dtype {dtype!r}") from None
    return dtype


def _positions(mask):
    """Position ids of left-padded rows: 0, 1, ... over the real tokens (as ``generate`` derives them)."""
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def _folder_identity(folder: Path) -> str:
    """Folder name + sha256 over its weight, config and tokenizer files (see :mod:`..model_hash`)."""
    try:
        return f"{folder.name}@sha256:{folder_sha256(folder)}"
    except FileNotFoundError as err:
        raise LLMError(str(err)) from None


def _gguf_source(gguf: Path) -> dict:
    """What the converted folder's stamp records of its GGUF: its name, size and content sha256.

    A GGUF with other bytes (a fine-tuned file of the same name and size, say) invalidates the folder;
    a merely touched or copied file with the same bytes does not. The sha256
    comes from :func:`~..model_hash.stamped_sha256`, so the file is read once, not at every load.
    """
    return {"gguf": gguf.name, "size": gguf.stat().st_size, "sha256": stamped_sha256(gguf)}


def _converted_folder(gguf: Path) -> Path:
    return gguf.with_name(f"{gguf.name}.hf-{STORED_DTYPE_NAME}")


def _stamp_state(gguf: Path) -> str:
    """The converted folder of ``gguf``: ``"current"``, ``"stale"`` (GGUF content changed, or a stamp of an
    older version without the sha256), ``"unreadable"`` or ``"absent"``."""
    stamp = _converted_folder(gguf) / _CONVERTED_STAMP
    if not stamp.is_file():
        return "absent"
    try:
        return "current" if json.loads(stamp.read_text()) == _gguf_source(gguf) else "stale"
    except (OSError, json.JSONDecodeError):
        return "unreadable"


def dequantised_gguf_folder(gguf: str | os.PathLike, trust_remote_code: bool = False) -> Path:
    """The Hugging Face folder made of a GGUF file (``<name>.gguf.hf-float16/``), converting once.

    Lets code that wants a plain model folder, such as :class:`~llm4sbr_adapter.offline.encode.TextEncoder`
    embedding item titles with an LLM's hidden states, use the same cached conversion as generation.
    """
    gguf = Path(gguf).expanduser()
    if not (gguf.is_file() and gguf.suffix.lower() == ".gguf"):
        raise LLMError(f"not a .gguf file: {gguf}")
    if _stamp_state(gguf) != "current":
        # loading converts and writes the folder (temp folder + rename)
        TransformersBackend(gguf, trust_remote_code=trust_remote_code, cache_converted=True)
        if _stamp_state(gguf) != "current":
            raise LLMError(f"could not write the converted model next to {gguf} (is its folder writable?)")
    return _converted_folder(gguf)


class TransformersBackend(LLMBackend):
    """Greedy (or sampled) batched generation with a local causal LM.

    Args:
        model_path: an HF model folder, or a ``.gguf`` file.
        device: "cpu" or "cuda" (or "cuda:N").
        dtype: compute dtype (torch dtype or its name); None -> float32 on CPU, bfloat16 on GPU.
        batch_size: prompts per forward batch in :meth:`generate`.
        trust_remote_code: passed to ``from_pretrained``.
        model_id: override of the identity used in cache keys (e.g. the GGUF's known sha256); by default
            the sha256 of the weights (GGUF file, or the folder's weight, config and tokenizer files;
            computed once and stamped), plus the compute dtype.
        cache_converted: for a GGUF file, save the converted model as an HF folder next to it and reuse it
            on later loads (much faster than converting again). Ignored for folders. Falls back to the
            slow path with a warning if the folder cannot be written.
        lazy: load the weights only when first needed (``generate``, ``model``, ``tokenizer``, ...), so
            a build whose answers are all cached never loads the model; ``model_id`` is known at once.
        share_prefix: read the opening shared by neighbouring prompts of a batch once and copy its
            key/value cache per prompt (see :meth:`generate`); False answers each prompt from scratch.
        quantize: ``None`` or ``"int8"``: dynamic int8 ``nn.Linear`` layers (CPU only, see :mod:`.int8`).
    """

    #: Neighbouring prompts of one batch share their key/value cache (``share_prefix``), so the answer
    #: loop hands them over sorted: a session's perspectives, then the rows extending the same listing.
    reuses_prompt_prefix = True

    def __init__(
        self,
        model_path: str | os.PathLike,
        device: str = "cpu",
        dtype: Any = None,
        batch_size: int = 8,
        trust_remote_code: bool = False,
        *,
        model_id: str | None = None,
        cache_converted: bool = True,
        lazy: bool = False,
        share_prefix: bool = True,
        quantize: str | None = None,
    ) -> None:
        path = Path(model_path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"model path not found: {path}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = path
        self.device = str(device)
        self.dtype = _resolve_dtype(dtype, self.device.split(":")[0])
        self.batch_size = int(batch_size)
        self.trust_remote_code = bool(trust_remote_code)

        self._is_gguf = path.is_file() and path.suffix.lower() == ".gguf"
        if self._is_gguf:
            identity = model_id or f"gguf-sha256:{stamped_sha256(path)}"
        elif path.is_dir():
            identity = model_id or f"hf:{_folder_identity(path)}"
        else:
            raise LLMError(f"model path must be an HF model folder or a .gguf file: {path}")
        if quantize not in (None, "int8"):
            raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
        if quantize and self.device != "cpu":
            raise ValueError(f"quantize='int8' runs on a CPU only, not on device {self.device!r}")
        self.quantize = quantize
        weights = f"|weights={STORED_DTYPE_NAME}" if self._is_gguf else ""
        self.model_id = f"{identity}{weights}|dtype={_dtype_name(self.dtype)}" + ("|int8" if quantize else "")
        self._cache_converted = bool(cache_converted)
        self.share_prefix = bool(share_prefix)
        if not lazy:
            self._load()

    _LOADED_ATTRIBUTES = frozenset(
        {
            "tokenizer",
            "model",
            "load_seconds",
            "vocab_rows",
            "has_chat_template",
            "eos_token_ids",
            "num_parameters",
            "_cache_kwarg",
        }
    )

    def __getattr__(self, name: str):
        # Only reached when normal lookup fails: a lazily created backend loads its model on first use.
        if name in TransformersBackend._LOADED_ATTRIBUTES and "model_path" in self.__dict__:
            self._load()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _load(self) -> None:
        path = self.model_path
        t0 = time.perf_counter()
        with transformers_bars():  # transformers' loading and GGUF conversion bars follow the package's rule
            if self._is_gguf:
                tokenizer, model, how = self._load_gguf(path, self._cache_converted)
            else:
                tokenizer, model = self._load_folder(path)
                how = "folder"
        model.to(device=self.device, dtype=self.dtype)
        model.eval()
        num_parameters = sum(p.numel() for p in model.parameters())  # before int8 packs the Linear weights
        if self.quantize == "int8":
            quantize_linear_int8(model)
        logger.info(
            "loaded %s (%s) on %s as %s in %.1f s",
            path,
            how,
            self.device,
            _dtype_name(self.dtype) + (" with int8 linear layers" if self.quantize else ""),
            time.perf_counter() - t0,
        )

        tok = tokenizer
        tok.padding_side = "left"
        vocab_rows = int(model.get_input_embeddings().num_embeddings)
        # Padded positions are masked out, so any in-range id works as padding; the eos token is the
        # usual choice when the tokenizer has no pad token (or one the embedding table lacks).
        if tok.pad_token_id is None or tok.pad_token_id >= vocab_rows:
            if tok.eos_token_id is not None and tok.eos_token_id < vocab_rows:
                tok.pad_token = tok.eos_token
            else:
                raise LLMError(f"{path}: tokenizer has neither a usable pad token nor an eos token")
        self.tokenizer, self.model, self.vocab_rows = tok, model, vocab_rows
        self.has_chat_template = bool(getattr(tok, "chat_template", None))
        self.eos_token_ids = [i for i in self._eos_ids() if i < vocab_rows]
        self.num_parameters = num_parameters
        # transformers 5 renamed forward's and generate's ``past_key_values`` to ``cache``
        self._cache_kwarg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self.load_seconds = time.perf_counter() - t0

    # ----------------------------------------------------------------------------------- loading
    def _load_folder(self, folder: Path):
        tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=self.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=self.dtype, trust_remote_code=self.trust_remote_code)
        return tok, model

    def _load_gguf(self, gguf: Path, cache_converted: bool):
        converted = _converted_folder(gguf)
        state = _stamp_state(gguf) if cache_converted else "absent"
        if state == "current":
            try:
                tok, model = self._load_folder(converted)
                return tok, model, f"converted cache {converted.name}"
            except Exception as e:  # corrupt cache -> rebuild
                logger.warning("cannot use converted cache %s (%s); converting again", converted, e)
        elif state in ("stale", "unreadable"):
            logger.warning(
                "converted cache %s is %s (GGUF changed or stamp damaged); converting again", converted, state
            )

        source = _gguf_source(gguf) if cache_converted else None  # what is converted, read before converting
        t0 = time.perf_counter()
        try:
            with read_gguf_once():  # transformers would parse the metadata three times
                tok = AutoTokenizer.from_pretrained(
                    gguf.parent, gguf_file=gguf.name, trust_remote_code=self.trust_remote_code
                )
                model = AutoModelForCausalLM.from_pretrained(
                    gguf.parent, gguf_file=gguf.name, dtype=None, trust_remote_code=self.trust_remote_code
                )
        except Exception as err:  # the GGUF reader fails with struct, key and value errors alike
            raise LLMError(f"{gguf}: transformers cannot read this GGUF file ({type(err).__name__}: {err})") from err
        model.to(getattr(torch, STORED_DTYPE_NAME))  # the same weights whether or not the folder is written
        logger.info("converted GGUF %s in %.1f s", gguf.name, time.perf_counter() - t0)
        if source is not None:  # set exactly when cache_converted
            self._save_converted(tok, model, converted, source)
        return tok, model, "gguf"

    @staticmethod
    def _save_converted(tok, model, converted: Path, source: dict) -> None:
        """Write the dequantised model (already in :data:`STORED_DTYPE_NAME`) + tokenizer next to the GGUF
        (temp folder, then rename)."""
        tmp = None
        try:
            tmp = Path(tempfile.mkdtemp(prefix=converted.name + ".tmp-", dir=converted.parent))
            # The weights are already plain dequantised tensors; transformers refuses to save a model
            # still marked as GGUF-quantised, so drop the marker while saving.
            quantizer = getattr(model, "hf_quantizer", None)
            qconfig = getattr(model.config, "quantization_config", None)
            try:
                model.hf_quantizer = None
                if qconfig is not None:
                    delattr(model.config, "quantization_config")
                model.save_pretrained(tmp)
            finally:
                model.hf_quantizer = quantizer
                if qconfig is not None:
                    model.config.quantization_config = qconfig
            tok.save_pretrained(tmp)
            (tmp / _CONVERTED_STAMP).write_text(json.dumps(source))
            stamp = converted / _CONVERTED_STAMP
            if stamp.is_file() and json.loads(stamp.read_text()) == source:
                logger.info("another process already cached the converted model in %s", converted)
                return  # ours is removed in `finally`
            if converted.exists():  # stale or broken: move aside first so the rename below is atomic
                stale = Path(tempfile.mkdtemp(prefix=converted.name + ".stale-", dir=converted.parent))
                os.replace(converted, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(tmp, converted)
            tmp = None
            logger.info("saved converted model to %s", converted)
        except (OSError, ValueError) as e:
            logger.warning(
                "could not cache the converted model in %s (%s); later loads will convert again", converted, e
            )
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def _eos_ids(self) -> list[int]:
        ids: set[int] = set()
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            ids.add(gen_eos)
        elif gen_eos:
            ids.update(int(i) for i in gen_eos)
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        vocab_special = set(getattr(self.tokenizer, "all_special_tokens", []) or [])
        vocab_special.update(getattr(self.tokenizer, "added_tokens_encoder", {}) or {})
        for t in _END_OF_TURN_TOKENS:
            if t in vocab_special:
                tid = self.tokenizer.convert_tokens_to_ids(t)
                if isinstance(tid, int) and tid >= 0:
                    ids.add(tid)
        return sorted(ids)

    # ----------------------------------------------------------------------------------- prompts
    def format_prompt(self, prompt: str) -> str:
        """The full model input text for one user message (chat template when the tokenizer has one)."""
        if self.has_chat_template:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        return prompt

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each formatted prompt (no padding)."""
        texts = [self.format_prompt(p) for p in prompts]
        # the chat template already contains any BOS the model needs
        enc = self.tokenizer(texts, add_special_tokens=not self.has_chat_template)
        return [list(ids) for ids in enc["input_ids"]]

    # -------------------------------------------------------------------------------- generation
    def _left_pad(self, batch_ids: list[list[int]]):
        """``(input_ids [B, T], attention_mask [B, T])`` with the prompts right-aligned (padding on the left)."""
        pad = int(self.tokenizer.pad_token_id)
        width = max(len(x) for x in batch_ids)
        input_ids = torch.full((len(batch_ids), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch_ids), width), dtype=torch.long)
        for r, ids in enumerate(batch_ids):
            if ids:
                input_ids[r, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                attention[r, width - len(ids) :] = 1
        return input_ids.to(self.device), attention.to(self.device)

    def _generate_ids(self, batch_ids: list[list[int]], config: GenerationConfig) -> list[list[int]]:
        """``model.generate`` on one left-padded batch; returns each row's new ids up to its first eos."""
        input_ids, attention = self._left_pad(batch_ids)
        return self._generate_ids_from(input_ids, attention, config)

    def _generate_ids_from(self, input_ids, attention, config: GenerationConfig, cache=None) -> list[list[int]]:
        """``model.generate`` from ``input_ids`` (whose first ``cache`` length tokens the cache already holds)."""
        width = input_ids.shape[1]
        kwargs: dict[str, Any] = dict(
            max_new_tokens=int(config.max_new_tokens),
            pad_token_id=int(self.tokenizer.pad_token_id),
            eos_token_id=self.eos_token_ids or None,
        )
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        if config.stop:  # end each row early once it contains a stop string (cut exactly in _decode)
            kwargs.update(stop_strings=list(config.stop), tokenizer=self.tokenizer)
        if config.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=float(config.temperature), top_p=1.0, top_k=0)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        eos = set(self.eos_token_ids)
        result = []
        for row in out[:, width:].tolist():
            cut = next((i for i, t in enumerate(row) if t in eos), len(row))
            result.append(row[:cut])
        return result

    def _decode(self, ids: list[int], config: GenerationConfig) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return truncate_at_stop(text, config.stop)

    def generate(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        """Batched generation; returns completions in the prompt order.

        With ``share_prefix`` (the default) neighbouring prompts that share an opening (see
        :func:`~.prefix_groups.prefix_groups`: the perspectives of one session, prefix-augmented rows) are
        one group: its shared tokens are read once and the key/value cache is copied per member. Otherwise
        prompts are sorted by token length and answered in left-padded batches of ``batch_size``.
        """
        config = config or GenerationConfig()
        prompts = list(prompts)
        if not prompts:
            return []
        encoded = self.encode_prompts(prompts)
        answers: list[str] = [""] * len(prompts)
        for idx, new_ids in self._answer_batches(encoded, config):
            for i, ids in zip(idx, new_ids, strict=True):
                answers[i] = self._decode(ids, config)
        return answers

    def _answer_batches(self, encoded: list[list[int]], config: GenerationConfig):
        """Yield ``(prompt indices, new token ids)`` per batch."""
        if not self.share_prefix:
            order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i]), i))
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                yield idx, self._generate_ids([encoded[i] for i in idx], config)
            return
        groups = prefix_groups(encoded, self.batch_size)
        groups.sort(key=lambda g: -max(len(encoded[i]) for i in g.members))  # batches of similar length
        batch: list[PrefixGroup] = []
        for group in groups:
            if batch and sum(len(g.members) for g in batch) + len(group.members) > self.batch_size:
                yield [i for g in batch for i in g.members], self._generate_shared(encoded, batch, config)
                batch = []
            batch.append(group)
        if batch:
            yield [i for g in batch for i in g.members], self._generate_shared(encoded, batch, config)

    def _generate_shared(
        self, encoded: list[list[int]], groups: list[PrefixGroup], config: GenerationConfig
    ) -> list[list[int]]:
        """Read each group's shared prefix once (one left-padded forward), copy its key/value cache to every
        member, then generate all members from their own suffixes (left-padded after the prefix)."""
        prefix_ids, prefix_mask = self._left_pad([encoded[g.members[0]][: g.prefix] for g in groups])
        cache = DynamicCache()
        with torch.inference_mode():
            self.model(
                input_ids=prefix_ids,
                attention_mask=prefix_mask,
                position_ids=_positions(prefix_mask),
                use_cache=True,
                **{self._cache_kwarg: cache},
            )
        rows = [r for r, g in enumerate(groups) for _ in g.members]
        index = torch.tensor(rows, dtype=torch.long, device=prefix_ids.device)
        cache.reorder_cache(index)  # type: ignore[arg-type]  # the stubs ask for LongTensor, a type no tensor has  # index_select: one copy per member
        suffix_ids, suffix_mask = self._left_pad([encoded[i][g.prefix :] for g in groups for i in g.members])
        input_ids = torch.cat([prefix_ids[rows], suffix_ids], dim=1)
        attention = torch.cat([prefix_mask[rows], suffix_mask], dim=1)
        return self._generate_ids_from(input_ids, attention, config, cache)

    def generate_naive(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        """One prompt per `model.generate` call, no padding (reference for :meth:`generate`)."""
        config = config or GenerationConfig()
        return [
            self._decode(self._generate_ids([ids], config)[0], config) for ids in self.encode_prompts(list(prompts))
        ]

    def close(self) -> None:
        self.model = None
