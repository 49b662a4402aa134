"""Issue 24, item 5: numbers at their edges (float16 underflow, loss scale, empty test split, float64 inputs)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig
from llm4sbr_adapter.experiments.baselines import main as baselines_main
from llm4sbr_adapter.experiments.training.train import main as train_main
from llm4sbr_adapter.float16_rows import VanishedRowsError
from llm4sbr_adapter.losses import AlignUniformLoss, InfoNCELoss
from llm4sbr_adapter.store import IntentStore, StoreMetadata, write_store


def test_float16_store_refuses_rows_that_underflow_to_zero(tmp_path: Path) -> None:
    vec = np.ones((3, 4), np.float32)
    vec[1] = 1e-9  # below float16's smallest subnormal: the row would be stored as zeros
    vec[2] = 0.0  # a zero row stays allowed (no intent)
    meta = StoreMetadata(perspectives=["long"], text_dim=4, top_f=0)
    with pytest.raises(VanishedRowsError, match=r"1 non-zero row\(s\) underflow .*row 1, session id 11"):
        write_store(tmp_path / "s.safetensors", [10, 11, 12], {"long": vec}, meta, dtype="float16")
    assert not (tmp_path / "s.safetensors").exists()
    write_store(tmp_path / "s.safetensors", [10, 11, 12], {"long": vec}, meta, dtype="float32")
    assert IntentStore.open(tmp_path / "s.safetensors").vectors("long")[1].max() > 0


@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e-8, 1e8, 1e20, 1e30])
def test_align_uniform_loss_is_scale_free(scale: float) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(6, 5), torch.randn(6, 5)
    loss = AlignUniformLoss()
    reference = loss(x, y)
    for batch in (6, 1):  # the hand-written path (two rows and more) and the reference path (one row)
        xs, ys = (x[:batch] * scale).requires_grad_(), (y[:batch] * scale).requires_grad_()
        value = loss(xs, ys)
        torch.testing.assert_close(value, loss(x[:batch], y[:batch]), rtol=1e-5, atol=1e-6)
        value.backward()
        assert torch.isfinite(xs.grad).all() and torch.isfinite(ys.grad).all()
    assert reference.item() != 0.0
    info = InfoNCELoss()
    torch.testing.assert_close(info(x * scale, y * scale), info(x, y), rtol=1e-5, atol=1e-6)


def test_align_uniform_gradient_matches_autograd_at_large_scale() -> None:
    torch.manual_seed(1)
    x, y = (torch.randn(5, 3, dtype=torch.float64) * 1e150 for _ in range(2))
    xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
    AlignUniformLoss()(xs, ys).backward()
    xr, yr = (x / 1e150).requires_grad_(), (y / 1e150).requires_grad_()
    AlignUniformLoss()(xr, yr).backward()
    torch.testing.assert_close(xs.grad * 1e150, xr.grad)


def _data(folder: Path, test_rows: int) -> Path:
    folder.mkdir()
    for split, rows in (("train", 3), ("valid", 2), ("test", test_rows)):
        seqs = [[1, 2], [2, 3], [1, 3]][:rows]
        with open(folder / f"{split}.txt", "wb") as handle:
            pickle.dump((seqs, [3, 1, 2][:rows]), handle)
    return folder


def test_an_empty_test_split_is_refused_by_train_and_baselines(tmp_path: Path, capsys) -> None:
    data = _data(tmp_path / "d", test_rows=0)
    assert baselines_main(["--data", str(data), "--runs", str(tmp_path / "runs"), "--models", "pop"]) == 2
    assert "split test has no rows" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    assert train_main(["--data", str(data), "--out", str(tmp_path / "r.json"), "--epochs", "1"]) == 1
    assert "error: " in capsys.readouterr().err and not (tmp_path / "r.json").exists()


def test_float64_inputs_to_the_enhancer_name_the_dtype() -> None:
    enhancer = IntentEnhancer(IntentEnhancerConfig(perspectives=("long",), hidden_size=4, text_dim=6))
    h = torch.randn(3, 4, dtype=torch.float64)
    intents = {"long": torch.randn(3, 6, dtype=torch.float64)}
    with pytest.raises(ValueError, match=r"have dtype torch.float64 but the enhancer's weights are torch.float32"):
        enhancer(h, h, intents=intents)
    out = enhancer.to(torch.float64)(h, h, intents=intents)  # the cast the message proposes works
    assert out.session.dtype == torch.float64


@pytest.mark.parametrize(("value", "needle"), [(2**53 + 1, "not exactly representable"), (10**400, "finite number")])
def test_float_settings_refuse_integers_a_float_would_round(value: int, needle: str) -> None:
    """Found by tests/test_fuzz_inputs.py: 2**53 + 1 read as 2**53, 10**400 an OverflowError."""
    with pytest.raises(ValueError, match=needle):
        IntentEnhancerConfig(perspectives=("long",), hidden_size=4, text_dim=4, uniform_weight=value)
