"""The drift statistics on synthetic vectors: same distribution -> high p-value and AUC near 0.5;
shifted -> low p-value and high AUC; clustered frames need drives as the unit; rates and distances
by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from longtail.errors import InputError
from longtail.monitor.drift import (
    compute_domain_auc,
    compute_mmd,
    compute_rate_test,
    median_sigma,
    total_variation,
)


def _gauss(seed: int, n: int = 150, d: int = 16, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x[:, 0] += shift
    return x


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_distribution_gives_a_high_p_value_and_chance_auc(seed: int) -> None:
    ref, cur = _gauss(seed), _gauss(seed + 100)
    mmd = compute_mmd(ref, cur, permutations=200, seed=seed)
    auc = compute_domain_auc(ref, cur, seed=seed).auc
    assert mmd.p_value > 0.05 and mmd.unit == "frame" and not mmd.exact
    assert 0.35 < auc < 0.65


def test_a_shifted_mean_gives_a_low_p_value_and_a_high_auc() -> None:
    ref, cur = _gauss(1), _gauss(2, shift=2.5)
    mmd = compute_mmd(ref, cur, permutations=200)
    dom = compute_domain_auc(ref, cur)
    assert mmd.p_value == pytest.approx(1 / 201)  # no permutation reaches it: the smallest p-value there is
    assert mmd.mmd2 > 0.02 > compute_mmd(ref, _gauss(3), permutations=20).mmd2
    assert dom.auc > 0.85  # the Bayes classifier reaches Phi(2.5 / sqrt 2) = 0.96
    # The current vectors it finds least like the reference are the shifted ones.
    assert np.corrcoef(dom.scores, cur[:, 0])[0, 1] > 0.5


def test_mmd_by_hand_on_two_points_a_side() -> None:
    # Reference {0, 0}: every squared distance is 0, so the bandwidth falls back to 1. Current {1, 1}:
    # k(0,0) = k(1,1) = 1, k(0,1) = exp(-1/2); MMD^2_u = 1 + 1 - 2 exp(-1/2).
    out = compute_mmd(np.zeros((2, 1)), np.ones((2, 1)), permutations=20)
    assert out.sigma == 1.0
    assert out.mmd2 == pytest.approx(2 - 2 * math.exp(-0.5))
    # Every split of 4 vectors into 2 + 2 is enumerated (6 of them): the observed one and its mirror are the largest.
    assert out.exact and out.permutations == 6 and out.p_value == pytest.approx(2 / 6)


def test_median_heuristic_by_hand() -> None:
    # Points 0, 1, 3 on a line: squared distances 1, 9, 4 (each twice off the diagonal); median 4, sigma^2 = 2.
    assert median_sigma(np.array([[0.0], [1.0], [3.0]])) == pytest.approx(math.sqrt(2.0))


def _drives(seed: int, drives: int, frames: int = 30, d: int = 8, shift: float = 0.0) -> tuple[np.ndarray, list[str]]:
    """Frames clustered by drive: each drive has its own look (a random centre), frames vary little around it."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(drives, d))
    centres[:, 0] += shift
    x = np.concatenate([c + 0.1 * rng.normal(size=(frames, d)) for c in centres])
    return x, [f"d{seed}-{k}" for k in range(drives) for _ in range(frames)]


def test_frames_of_other_drives_from_the_same_mix_false_alarm_unless_drives_are_the_unit() -> None:
    (ref, g_ref), (cur, g_cur) = _drives(1, 8), _drives(2, 8)
    by_frame = compute_mmd(ref, cur, permutations=200)
    by_drive = compute_mmd(ref, cur, permutations=200, groups_ref=g_ref, groups_cur=g_cur)
    assert by_frame.p_value < 0.01  # frames are not exchangeable: the frame-level test "detects" the drives
    assert by_drive.p_value > 0.05 and by_drive.unit == "drive" and (by_drive.groups_ref, by_drive.groups_cur) == (8, 8)
    assert compute_domain_auc(ref, cur).auc > 0.9  # frame folds: the classifier recognises drives
    assert compute_domain_auc(ref, cur, groups_ref=g_ref, groups_cur=g_cur).auc < 0.75


def test_drives_from_a_shifted_mix_are_detected_with_drives_as_the_unit() -> None:
    (ref, g_ref), (cur, g_cur) = _drives(1, 8), _drives(3, 8, shift=3.0)
    assert compute_mmd(ref, cur, permutations=200, groups_ref=g_ref, groups_cur=g_cur).p_value < 0.01
    assert compute_domain_auc(ref, cur, groups_ref=g_ref, groups_cur=g_cur).auc > 0.8  # the default threshold


def test_bad_input_is_refused_with_what_to_fix() -> None:
    with pytest.raises(InputError, match=r"two \[n, d\] arrays of one dimension"):
        compute_mmd(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(InputError, match="at least 2 vectors per side"):
        compute_mmd(np.zeros((5, 3)), np.zeros((1, 3)))
    with pytest.raises(InputError, match="NaN or inf"):
        compute_mmd(np.full((5, 3), np.nan), np.zeros((5, 3)))
    with pytest.raises(InputError, match="groups for both sides or for neither"):
        compute_mmd(np.zeros((5, 3)), np.ones((5, 3)), groups_ref=list("aabbc"))
    with pytest.raises(InputError, match="at least 2 drives per side"):
        compute_domain_auc(np.zeros((5, 3)), np.ones((5, 3)), groups_ref=["a"] * 5, groups_cur=list("bbccd"))


def test_rate_test_by_hand() -> None:
    same = compute_rate_test(10, 100.0, 10, 100.0)
    assert (same.rate, same.ref_rate, same.ratio) == (10.0, 10.0, 1.0)
    # Given 20 events over equal distances, the batch's count is Binomial(20, 1/2): P(X >= 10) = 0.588.
    assert same.p_value == pytest.approx(0.5881, abs=1e-4)
    more = compute_rate_test(12, 50.0, 3, 100.0)
    assert more.rate == 24.0 and more.ref_rate == 3.0 and more.ratio == 8.0
    # P(X >= 12) for X ~ Binomial(15, 1/3): sum_{k=12}^{15} C(15,k) (1/3)^k (2/3)^(15-k).
    expected = sum(math.comb(15, k) * (1 / 3) ** k * (2 / 3) ** (15 - k) for k in range(12, 16))
    assert more.p_value == pytest.approx(expected)
    first = compute_rate_test(2, 10.0, 0, 100.0)
    assert first.ratio == math.inf and first.to_json()["ratio"] is None
    assert compute_rate_test(0, 0.0, 4, 10.0).rate is None


def test_total_variation_by_hand() -> None:
    assert total_variation({"day": 3, "night": 1}, {"day": 1, "night": 1}) == pytest.approx(0.25)
    assert total_variation({"day": 1}, {"night": 5}) == 1.0
    assert total_variation({}, {"day": 1}) is None
