"""MultiIntentCapture: shapes, K, padding never attended, gradients, diversity regulariser."""

import pytest
import torch

from llm4sbr_adapter.hiphop.multi_intent import MultiIntentCapture, intent_diversity_loss, last_item_state

B, L, D = 4, 6, 8


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(B, L, D, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1]]).bool()
    return states, mask


@pytest.mark.parametrize("k,heads", [(1, 1), (3, 2), (5, 4)])
def test_shapes_and_k(k, heads):
    torch.manual_seed(0)
    mic = MultiIntentCapture(D, num_intents=k, num_heads=heads)
    states, mask = _batch()
    out = mic(states, mask)
    assert out.intents.shape == (B, k, D) and out.target.shape == (B, D)
    assert out.intent_weights.shape == (B, k) and out.item_attention.shape == (B, k, L)
    assert torch.allclose(out.intent_weights.sum(-1), torch.ones(B))
    assert mic.intent_queries.shape == (k, D)


def test_padding_is_never_attended():
    torch.manual_seed(0)
    mic = MultiIntentCapture(D, num_intents=3, num_heads=2).eval()
    states, mask = _batch()
    out = mic(states, mask)
    assert (out.item_attention[~mask.unsqueeze(1).expand(-1, 3, -1)] == 0).all()
    noisy = states.clone()
    noisy[~mask] = 1e3 * torch.randn(int((~mask).sum()), D)
    out2 = mic(noisy, mask)
    assert torch.allclose(out.target, out2.target, atol=1e-5)
    assert torch.allclose(out.intents, out2.intents, atol=1e-5)


def test_last_item_state_any_padding_layout():
    states, mask = _batch()
    last = last_item_state(states, mask)
    assert torch.equal(last[0], states[0, 5]) and torch.equal(last[1], states[1, 2])
    assert torch.equal(last[2], states[2, 0]) and torch.equal(last[3], states[3, 5])
    with pytest.raises(ValueError, match="no item"):
        last_item_state(states, torch.zeros(B, L, dtype=torch.bool))


def test_gradients_flow_and_query_matters():
    torch.manual_seed(0)
    mic = MultiIntentCapture(D, num_intents=3)
    states, mask = _batch()
    states.requires_grad_()
    out = mic(states, mask)
    (out.target.sum() + out.diversity).backward()
    assert mic.intent_queries.grad.abs().sum() > 0
    assert mic.pool_query.weight.grad.abs().sum() > 0
    assert states.grad[mask].abs().sum() > 0 and (states.grad[~mask] == 0).all()
    other = mic(states.detach(), mask, query=torch.randn(B, D))
    assert not torch.allclose(other.intent_weights, out.intent_weights.detach())
    assert torch.allclose(other.intents, out.intents.detach())  # the query only changes the pooling


def test_diversity_loss():
    eye = torch.eye(D)[:3].unsqueeze(0)  # orthogonal intents
    assert intent_diversity_loss(eye).item() == pytest.approx(0.0)
    same = torch.ones(2, 3, D)  # collapsed intents
    assert intent_diversity_loss(same).item() == pytest.approx(1.0)
    assert intent_diversity_loss(torch.randn(2, 1, D)).item() == 0.0


def test_bad_inputs():
    mic = MultiIntentCapture(D, num_intents=2)
    states, mask = _batch()
    with pytest.raises(ValueError, match="mask"):
        mic(states, mask[:, :3])
    mask[2] = False
    with pytest.raises(ValueError, match="no item"):
        mic(states, mask)
    with pytest.raises(ValueError, match="divisible"):
        MultiIntentCapture(D, num_heads=3)


@pytest.mark.parametrize("heads", [1, 2])
def test_packed_item_attention_equals_torch_multihead_attention_with_gradients(heads):
    """attend_items projects keys and values for real clicks only (issue 17); it must compute what
    nn.MultiheadAttention over the padded grid computes, attention weights and gradients included."""
    torch.manual_seed(0)
    cap = MultiIntentCapture(8, num_intents=3, num_heads=heads)
    states = torch.randn(4, 6, 8, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]]).bool()
    probe = torch.randn(4, 3, 8)

    got, got_w = cap.attend_items(states, mask)
    (got * probe).sum().backward()
    fast = [states.grad.clone()] + [p.grad.clone() for p in cap.parameters() if p.grad is not None]
    states.grad = None
    cap.zero_grad()
    queries = cap.intent_queries.unsqueeze(0).expand(4, -1, -1)
    want, want_w = cap.item_attention(queries, states, states, key_padding_mask=~mask, need_weights=True)
    (want * probe).sum().backward()
    slow = [states.grad] + [p.grad for p in cap.parameters() if p.grad is not None]

    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_w, want_w)
    assert cap.intent_queries.grad is not None and len(fast) == len(slow) == 1 + 1 + 4  # states, queries, MHA
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b)
