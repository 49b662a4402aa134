"""SemanticItemEmbedding: init/add modes, padding, missing titles, and the re-initialisation guard."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from llm4sbr_adapter.hiphop.semantic_items import (
    SemanticInitError,
    SemanticItemEmbedding,
    align_text_to_rows,
    fit_text_projection,
)

NUM_ROWS, TEXT_DIM, D = 12, 16, 8


class TinySRGNN(nn.Module):
    """The parts of a typical SR-GNN that matter here: an item embedding and a parameter-wide
    uniform ``reset_parameters`` called from the constructor."""

    def __init__(self, num_rows: int, d: int) -> None:
        super().__init__()
        self.hidden_size = d
        self.embedding = nn.Embedding(num_rows, d)
        self.linear_one = nn.Linear(d, d)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            weight.data.uniform_(-stdv, stdv)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.linear_one(self.embedding(items))


def _text(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(NUM_ROWS, TEXT_DIM, generator=g)
    text[0] = 0.0  # padding row
    text[5] = 0.0  # an item without a title
    text[7] = text[3]  # two items with the same title
    return torch.nn.functional.normalize(text, dim=1) * (text.abs().sum(1, keepdim=True) > 0)


def test_align_text_to_rows():
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    vectors[2] = 0.0
    text, has = align_text_to_rows(6, {"a": 1, "b": 2, "c": 4, "z": 5}, ["b", "a", "c", "unknown"], vectors)
    assert torch.equal(text[2], torch.tensor([1.0, 2.0, 3.0])) and torch.equal(text[1], torch.tensor([4.0, 5.0, 6.0]))
    assert has.tolist() == [False, True, True, False, False, False]  # "c" has a zero vector, "z" no vector
    with pytest.raises(ValueError, match="padding row"):
        align_text_to_rows(6, {"a": 0}, ["a"], vectors[:1])


def test_fit_projection_pca_preserves_geometry():
    g = torch.Generator().manual_seed(1)
    text = torch.randn(40, TEXT_DIM, generator=g) * torch.linspace(3, 0.1, TEXT_DIM)
    mean, matrix = fit_text_projection(text, TEXT_DIM, "pca")
    proj = (text - mean) @ matrix
    # a full-rank PCA is a rotation of the centred data: pairwise distances are kept
    exact = "donot_use_mm_for_euclid_dist"
    assert torch.allclose(
        torch.cdist(proj, proj, compute_mode=exact),
        torch.cdist(text - mean, text - mean, compute_mode=exact),
        atol=1e-4,
    )
    # fewer output dims: the kept directions carry the most variance, in decreasing order
    _, small = fit_text_projection(text, 4, "pca")
    var = ((text - mean) @ small).var(dim=0)
    top4 = torch.linalg.eigvalsh(torch.cov((text - mean).T)).flip(0)[:4]
    assert (var[:-1] >= var[1:]).all() and torch.allclose(var, top4, rtol=1e-3)


def test_init_mode_injects_semantics_and_keeps_untitled_rows():
    torch.manual_seed(0)
    model = TinySRGNN(NUM_ROWS, D)
    before = model.embedding.weight.detach().clone()
    sem = SemanticItemEmbedding(_text(), D, mode="init")
    sem.attach(model.embedding)
    w = model.embedding.weight.detach()
    assert torch.equal(w[0], torch.zeros(D))  # padding row zeroed
    assert torch.equal(w[5], before[5])  # untitled item keeps the backbone init
    assert torch.allclose(w[3], w[7])  # same title -> same vector
    assert not torch.allclose(w[3], w[4])
    assert abs(w[sem.has_text].std().item() - before.std().item()) < 0.2 * before.std().item()
    assert sem.verify() == pytest.approx(1.0)
    model(torch.tensor([[1, 2, 3]]))  # first forward runs the one-shot check


def test_reset_parameters_after_attach_is_caught():
    torch.manual_seed(0)
    model = TinySRGNN(NUM_ROWS, D)
    sem = SemanticItemEmbedding(_text(), D, mode="init")
    sem.attach(model.embedding)
    model.reset_parameters()  # the classic silent erase
    with pytest.raises(SemanticInitError, match="overwritten"):
        sem.verify()
    with pytest.raises(SemanticInitError):
        model(torch.tensor([[1, 2, 3]]))  # the forward pre-hook catches it too
    with pytest.raises(SemanticInitError):
        sem.verify(min_similarity=0.5)  # a re-init is not mistaken for drift


def test_attach_after_reset_passes_and_drift_tolerance():
    torch.manual_seed(0)
    model = TinySRGNN(NUM_ROWS, D)
    model.reset_parameters()
    sem = SemanticItemEmbedding(_text(), D, mode="init")
    sem.attach(model.embedding)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model(torch.tensor([[1, 2, 3, 4]])).sum().backward()  # hook passes on first forward
    opt.step()
    with pytest.raises(SemanticInitError):
        sem.verify()  # exact check: rows changed by training
    assert sem.verify(min_similarity=0.9) > 0.9  # but they are still the injected ones


def test_add_mode_shapes_padding_missing_and_grad():
    torch.manual_seed(0)
    sem = SemanticItemEmbedding(_text(), D, mode="add", projection="mlp")
    nn.init.normal_(sem.missing_vector)
    ids = torch.tensor([[0, 1, 5, 7], [3, 0, 0, 0]])
    out = sem(ids)
    assert out.shape == (2, 4, D)
    assert torch.equal(out[0, 0], torch.zeros(D)) and torch.equal(out[1, 1:], torch.zeros(3, D))
    # the untitled item 5 gets id + missing vector
    assert torch.allclose(out[0, 2], sem.id_embedding.weight[5] + sem.missing_vector)
    assert sem.weight.shape == (NUM_ROWS, D) and torch.allclose(sem.weight[ids], out)
    out.sum().backward()
    assert sem.projection[0].weight.grad.abs().sum() > 0
    assert sem.missing_vector.grad.abs().sum() > 0
    assert sem.text.grad is None and not sem.text.requires_grad


def test_add_mode_is_immune_to_backbone_reset():
    torch.manual_seed(0)
    model = TinySRGNN(NUM_ROWS, D)
    text = _text()
    sem = SemanticItemEmbedding(text, D, mode="add", missing="zeros", id_embedding=model.embedding)
    model.embedding = sem  # the backbone now looks items up here
    model.reset_parameters()  # redraws every parameter, incl. the projection
    assert torch.equal(sem.text, text)  # the text is a buffer: untouched
    sem.verify()  # nothing to lose in add mode
    with torch.no_grad():
        sem.id_embedding.weight.zero_()
    w = sem.weight.detach()
    assert torch.equal(w[0], torch.zeros(D)) and torch.equal(w[5], torch.zeros(D))
    assert torch.allclose(w[3], w[7]) and not torch.allclose(w[3], w[4])  # text still shapes the rows
    # the padding row of the output stays zero although reset_parameters filled the id row
    model2 = TinySRGNN(NUM_ROWS, D)
    sem2 = SemanticItemEmbedding(text, D, mode="add", id_embedding=model2.embedding)
    assert model2.embedding.weight[0].abs().sum() > 0 and torch.equal(sem2(torch.tensor([0]))[0], torch.zeros(D))


def test_errors_are_clear():
    with pytest.raises(ValueError, match="rows must be in the backbone's item order"):
        SemanticItemEmbedding(_text(), D, mode="init").attach(nn.Embedding(NUM_ROWS + 1, D))
    with pytest.raises(RuntimeError, match="before attach"):
        SemanticItemEmbedding(_text(), D, mode="init").verify()
    with pytest.raises(ValueError, match="mode"):
        SemanticItemEmbedding(_text(), D, mode="replace")
    with pytest.raises(IndexError):
        SemanticItemEmbedding(_text(), D)(torch.tensor([NUM_ROWS]))


@pytest.mark.parametrize("missing", ["learned", "zeros"])
def test_add_mode_weight_is_every_row_of_forward_with_the_same_gradients(missing):
    """``weight`` (the whole item matrix, read by the scores every step) skips the gather of the text matrix
    (issue 17): values and gradients must still be those of ``forward`` over all rows."""
    torch.manual_seed(0)
    sem = SemanticItemEmbedding(_text(), D, mode="add", missing=missing)
    if sem.missing_vector is not None:
        nn.init.normal_(sem.missing_vector)
    probe = torch.randn(NUM_ROWS, D)
    (sem.weight * probe).sum().backward()
    fast = {n: p.grad.clone() for n, p in sem.named_parameters()}
    sem.zero_grad()
    want = sem(torch.arange(NUM_ROWS))
    (want * probe).sum().backward()
    assert torch.equal(sem.weight, want) and torch.equal(sem.weight[0], torch.zeros(D))
    for name, p in sem.named_parameters():
        torch.testing.assert_close(fast[name], p.grad, msg=name)
