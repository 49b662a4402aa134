"""SKNN, V-SKNN, STAN and V-STAN against small cases computed by hand (the computation is in the comments).

Definitions: llm4sbr_adapter/experiments/baselines/knn.py and stan.py (session-rec's, Ludewig & Jannach 2018;
Garg et al. 2019; Ludewig et al. 2021).
"""

from __future__ import annotations

from math import exp, log, log10, sqrt

import numpy as np
import pytest

from llm4sbr_adapter.experiments import baselines as bl
from llm4sbr_adapter.experiments.baselines.knn import POSITION_WEIGHTS, STEP_DECAYS

DAY = 24 * 3600.0


def arrays(*seqs: list[int]) -> list[np.ndarray]:
    return [np.asarray(s, dtype=np.int64) for s in seqs]


def dense(model: bl.Baseline, prefixes: list[np.ndarray], times: np.ndarray | None = None) -> np.ndarray:
    return model.raw_scores(prefixes, times).toarray()


# --------------------------------------------------------------------------- SKNN
KNN_SESSIONS = arrays([1, 2], [1, 3, 4], [2, 5], [5, 6])  # S0..S3, in time order unless times are given
KNN_QUERY = arrays([1, 2, 1])  # distinct items {1, 2}: |q| = 2


def test_sknn_cosine_and_jaccard_by_hand() -> None:
    # cosine |q ∩ s| / sqrt(|q| |s|): S0 2/sqrt(2*2) = 1, S1 1/sqrt(2*3), S2 1/sqrt(2*2) = 1/2, S3 shares nothing
    model = bl.SessionKNN(k=2, sample_size=0).fit(KNN_SESSIONS, 6)
    np.testing.assert_allclose(model.neighbours(KNN_QUERY).toarray(), [[1, 0, 0.5, 0]])  # k=2: S0 and S2
    # each neighbour adds its similarity to its items: 1 <- S0; 2 <- S0 + S2; 5 <- S2
    np.testing.assert_allclose(dense(model, KNN_QUERY), [[1, 1.5, 0, 0, 0.5, 0]])
    s1 = 1 / sqrt(6)
    wide = bl.SessionKNN(k=3, sample_size=0).fit(KNN_SESSIONS, 6)
    np.testing.assert_allclose(dense(wide, KNN_QUERY), [[1 + s1, 1.5, s1, s1, 0.5, 0]])
    # jaccard |q ∩ s| / |q ∪ s|: S0 2/2, S1 1/4, S2 1/3; k=2 keeps S0 and S2
    jaccard = bl.SessionKNN(k=2, sample_size=0, similarity="jaccard").fit(KNN_SESSIONS, 6)
    np.testing.assert_allclose(dense(jaccard, KNN_QUERY), [[1, 1 + 1 / 3, 0, 0, 1 / 3, 0]])


def test_sknn_samples_the_most_recent_candidates() -> None:
    # candidates S0, S1, S2; sample_size=2 keeps the 2 latest by row order: S1, S2 (S0 is dropped before k)
    model = bl.SessionKNN(k=5, sample_size=2).fit(KNN_SESSIONS, 6)
    s1 = 1 / sqrt(6)
    np.testing.assert_allclose(dense(model, KNN_QUERY), [[s1, 0.5, s1, s1, 0.5, 0]])
    # with times [10, 0, 5, 7] the latest candidates are S0 (10) and S2 (5)
    timed = bl.SessionKNN(k=5, sample_size=2).fit(KNN_SESSIONS, 6, np.array([10.0, 0.0, 5.0, 7.0]))
    np.testing.assert_allclose(dense(timed, KNN_QUERY), [[1, 1.5, 0, 0, 0.5, 0]])
    # equal similarity: the more recent session wins the last neighbour slot
    ties = bl.SessionKNN(k=1, sample_size=0).fit(arrays([1, 2], [1, 3], [1, 4]), 4)
    np.testing.assert_allclose(dense(ties, arrays([1])), [[2**-0.5, 0, 0, 2**-0.5]])


def brute_force_neighbours(model: bl.SessionKNN, prefix: np.ndarray) -> dict[int, float]:
    """Steps (1)-(4) of neighbours.py row by row in plain Python: the reference for the vectorised path."""
    query = set(prefix.tolist())
    common = {s: len(query & set(model.sessions[s].indices + 1)) for s in range(model.num_sessions)}
    shared = sorted((s for s in common if common[s]), key=lambda s: -model.recency[s])
    if model.sample_size:
        shared = shared[: model.sample_size]
    sims = {s: common[s] / sqrt(len(query) * model.session_sizes[s]) for s in shared}
    ranked = sorted(sims, key=lambda s: (-sims[s], -model.recency[s]))[: model.k]
    return {s: sims[s] for s in ranked}


@pytest.mark.parametrize("seed", range(6))
def test_sampling_and_top_k_match_a_row_by_row_reference_under_many_ties(seed: int) -> None:
    # few items and short sessions, so similarities tie often, also at the k-th place; times with repeats
    rng = np.random.default_rng(seed)
    sessions = [rng.integers(1, 7, size=rng.integers(1, 4)) for _ in range(60)]
    times = rng.integers(0, 10, size=len(sessions)).astype(np.float64)
    prefixes = [rng.integers(1, 7, size=rng.integers(1, 4)) for _ in range(40)]
    for k, sample_size in ((1, 0), (3, 0), (3, 10), (7, 25), (100, 5)):
        model = bl.SessionKNN(k=k, sample_size=sample_size).fit(sessions, 6, times)
        got = model.neighbours(prefixes).tocsr()
        for row, prefix in enumerate(prefixes):
            want = brute_force_neighbours(model, prefix)
            have = dict(zip(got[row].indices.tolist(), got[row].data.tolist(), strict=True))
            assert sorted(have) == sorted(want), (k, sample_size, row)
            np.testing.assert_allclose([have[s] for s in sorted(want)], [want[s] for s in sorted(want)])


# --------------------------------------------------------------------------- V-SKNN
V_SESSIONS = arrays([1, 7], [2, 8], [7, 9], [3, 2, 8])  # S0..S3
V_QUERY = arrays([1, 3, 2])  # L = 3: item 1 at p=1 (d=2), 3 at p=2 (d=1), 2 at p=3 (d=0)


def test_vsknn_div_weights_and_decay_by_hand() -> None:
    # weighting div p/L: w(1) = 1/3, w(3) = 2/3, w(2) = 1; vec sim = sum over shared / |q| (3 distinct items):
    # S0 {1}: (1/3)/3 = 1/9; S1 {2}: 1/3; S2: nothing; S3 {3, 2}: (2/3 + 1)/3 = 5/9
    model = bl.VSKNN(k=3, sample_size=0, weighting="div", weighting_score="div").fit(V_SESSIONS, 9)
    np.testing.assert_allclose(model.neighbours(V_QUERY).toarray(), [[1 / 9, 1 / 3, 0, 5 / 9]])
    # decay (div_score 1/step) by the most recent prefix click the neighbour contains:
    # S3 -> item 2, step 1 -> 1; S1 -> item 2, step 1 -> 1; S0 -> item 1, step 3 -> 1/3
    # item 1: S0 1/9 * 1/3 = 1/27; 2: S1 + S3 = 1/3 + 5/9 = 8/9; 3: S3 5/9; 7: S0 1/27; 8: S1 + S3 = 8/9
    expected = np.array([[1 / 27, 8 / 9, 5 / 9, 0, 0, 0, 1 / 27, 8 / 9, 0]])
    np.testing.assert_allclose(dense(model, V_QUERY), expected)
    # k=2 drops S0 (the least similar): items 1 and 7 lose their score
    two = bl.VSKNN(k=2, sample_size=0).fit(V_SESSIONS, 9)
    np.testing.assert_allclose(dense(two, V_QUERY), expected * [[0, 1, 1, 0, 0, 0, 0, 1, 0]])


def test_vsknn_idf_enters_as_one_plus_weight_times_idf() -> None:
    # idf(i) = log(S / clicks(i)), S = 4 sessions: clicks 1:1, 2:2, 3:1, 7:2, 8:2 -> idf 1, 3: log 4; 2, 7, 8: log 2
    # a neighbour's share of item i is multiplied by 1 + idf_weighting * idf(i); idf_weighting = 2
    model = bl.VSKNN(k=3, sample_size=0, idf_weighting=2.0).fit(V_SESSIONS, 9)
    got = dense(model, V_QUERY)[0]
    assert got[0] == pytest.approx(1 / 27 * (1 + 2 * log(4)))
    assert got[1] == pytest.approx(8 / 9 * (1 + 2 * log(2)))
    assert got[2] == pytest.approx(5 / 9 * (1 + 2 * log(4)))
    assert got[7] == pytest.approx(8 / 9 * (1 + 2 * log(2)))


def test_vsknn_other_weightings_by_hand() -> None:
    # quadratic (p/L)^2: w(3) = 4/9, w(2) = 1 -> S3 sim (4/9 + 1)/3 = 13/27; w(1) = 1/9 -> S0 1/27; S1 1/3
    quadratic = bl.VSKNN(k=3, sample_size=0, weighting="quadratic", weighting_score="same").fit(V_SESSIONS, 9)
    np.testing.assert_allclose(quadratic.neighbours(V_QUERY).toarray(), [[1 / 27, 1 / 3, 0, 13 / 27]])
    # linear 1 - 0.1 d: w(1) = 0.8 -> S0 0.8/3; log 1/log10(d + 1.7): w(1) = 1/log10(3.7)
    linear = bl.VSKNN(k=3, sample_size=0, weighting="linear").fit(V_SESSIONS, 9)
    assert linear.neighbours(V_QUERY)[0, 0] == pytest.approx(0.8 / 3)
    logw = bl.VSKNN(k=3, sample_size=0, weighting="log").fit(V_SESSIONS, 9)
    assert logw.neighbours(V_QUERY)[0, 0] == pytest.approx(1 / log10(3.7) / 3)
    # S0 is reached through item 1 at step 3: linear decay 0.7, log 1/log10(4.7), quadratic 1/9, same 1
    for name, decay in (("linear", 0.7), ("log", 1 / log10(4.7)), ("quadratic", 1 / 9), ("same", 1.0)):
        model = bl.VSKNN(k=3, sample_size=0, weighting="div", weighting_score=name).fit(V_SESSIONS, 9)
        assert dense(model, V_QUERY)[0, 6] == pytest.approx(1 / 27 * 3 * decay), name  # item 7: S0 only


def test_linear_functions_use_the_published_floor_not_the_code_guard() -> None:
    # a 12-click prefix: the last click (p = 12, d = 0) weighs 1 (session-rec's `i <= 10` guard would give 0)
    p, n = np.arange(1.0, 13.0), np.full(12, 12.0)
    np.testing.assert_allclose(POSITION_WEIGHTS["linear"](p, n)[[0, 1, 2, 11]], [0.0, 0.0, 0.1, 1.0])
    np.testing.assert_allclose(STEP_DECAYS["linear"](np.array([1.0, 9.0, 10.0, 50.0])), [0.9, 0.1, 0.0, 0.0])


# --------------------------------------------------------------------------- STAN and V-STAN
STAN_SESSIONS = arrays([4, 1, 5, 6], [2, 7], [1, 8, 2, 9])  # S0..S2
STAN_TIMES = np.array([9.0, 5.0, 12.0]) * DAY
STAN_QUERY = arrays([1, 2])  # d(1) = 1, d(2) = 0; the prefix's last click at day 10


def stan_similarities() -> np.ndarray:
    # lambda_spw = 1: w(1) = e^-1, w(2) = 1; norm = sqrt(e^-2 + 1); sim = sum_shared w / (norm * sqrt(|s|))
    norm = sqrt(exp(-2) + 1)
    cosine = np.array([exp(-1) / (norm * 2), 1 / (norm * sqrt(2)), (exp(-1) + 1) / (norm * 2)])
    # lambda_snh = 5 days, gaps |10 - 9| = 1, |10 - 5| = 5, |10 - 12| = 2 (a newer session: the absolute gap)
    return cosine * np.exp(-np.array([1.0, 5.0, 2.0]) / 5)


def test_stan_by_hand() -> None:
    sim = stan_similarities()
    model = bl.STAN(k=3, sample_size=0, lambda_spw=1.0, lambda_snh=5.0, lambda_inh=1.0)
    model.fit(STAN_SESSIONS, 9, STAN_TIMES)
    np.testing.assert_allclose(model.neighbours(STAN_QUERY, np.array([10 * DAY])).toarray(), [sim])
    # item weight exp(-|p(i) - p*| / lambda_inh), p* = last position in the neighbour of a shared item:
    # S0 = [4, 1, 5, 6], p* = 2 (item 1): 4 -> e^-1, 1 -> 1, 5 -> e^-1, 6 -> e^-2
    # S1 = [2, 7], p* = 1: 2 -> 1, 7 -> e^-1
    # S2 = [1, 8, 2, 9], p* = 3 (item 2): 1 -> e^-2, 8 -> e^-1, 2 -> 1, 9 -> e^-1
    e1, e2 = exp(-1), exp(-2)
    expected = [
        sim[0] + sim[2] * e2,  # 1
        sim[1] + sim[2],  # 2
        0,
        sim[0] * e1,  # 4
        sim[0] * e1,  # 5
        sim[0] * e2,  # 6
        sim[1] * e1,  # 7
        sim[2] * e1,  # 8
        sim[2] * e1,  # 9
    ]
    np.testing.assert_allclose(dense(model, STAN_QUERY, np.array([10 * DAY])), [expected])
    # without times, or with lambda_snh = 0, there is no recency factor
    untimed = bl.STAN(k=3, sample_size=0, lambda_spw=1.0, lambda_inh=1.0).fit(STAN_SESSIONS, 9)
    no_recency = sim / np.exp(-np.array([1.0, 5, 2]) / 5)
    np.testing.assert_allclose(untimed.neighbours(STAN_QUERY).toarray(), [no_recency])
    off = bl.STAN(k=3, sample_size=0, lambda_spw=1.0, lambda_snh=0.0, lambda_inh=1.0).fit(STAN_SESSIONS, 9, STAN_TIMES)
    np.testing.assert_allclose(off.neighbours(STAN_QUERY, np.array([10 * DAY])).toarray(), [no_recency])
    with pytest.raises(ValueError, match="lambda_snh must be >= 0"):
        bl.STAN(lambda_snh=-1.0)


def test_vstan_adds_sequential_and_idf_weights_by_hand() -> None:
    sim = stan_similarities()
    model = bl.VSTAN(k=3, sample_size=0, lambda_spw=1.0, lambda_snh=5.0, lambda_inh=1.0, lambda_ipw=2.0, lambda_idf=1.0)
    got = dense(model.fit(STAN_SESSIONS, 9, STAN_TIMES), STAN_QUERY, np.array([10 * DAY]))[0]
    # sequential weight exp(-d_n / lambda_ipw), d_n = distance of the most recent prefix click in n:
    # S0 holds 1 only (d = 1) -> e^-1/2; S1 holds 2 (d = 0) -> 1; S2 holds 2 -> 1
    # idf: S = 3 sessions, clicks(5) = 1 -> log 3; clicks(2) = 2 -> log 1.5; clicks(9) = 1 -> log 3
    assert got[4] == pytest.approx(sim[0] * exp(-1) * exp(-0.5) * (1 + log(3)))  # item 5: S0 only
    assert got[1] == pytest.approx((sim[1] + sim[2]) * (1 + log(1.5)))  # item 2: S1 and S2, both d = 0
    assert got[8] == pytest.approx(sim[2] * exp(-1) * (1 + log(3)))  # item 9: S2 only
    # lambda_idf = 0 switches IDF off; lambda_ipw large leaves STAN
    stan = dense(bl.STAN(k=3, sample_size=0, lambda_inh=1.0).fit(STAN_SESSIONS, 9, STAN_TIMES), STAN_QUERY)
    plain = bl.VSTAN(k=3, sample_size=0, lambda_inh=1.0, lambda_ipw=1e12, lambda_idf=0.0)
    np.testing.assert_allclose(dense(plain.fit(STAN_SESSIONS, 9, STAN_TIMES), STAN_QUERY), stan)


def test_settings_rebuild_each_model() -> None:
    for name, space in bl.SPACES.items():
        model = bl.MODELS[name](**space.start, exclude_seen=True)
        assert bl.MODELS[name](**model.settings()).settings() == model.settings()
