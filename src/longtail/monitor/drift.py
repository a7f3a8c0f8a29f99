"""Two-sample drift statistics on embeddings, and the count-rate test: pure functions.

- `compute_mmd`: the maximum mean discrepancy with a Gaussian RBF kernel and a permutation
  p-value, as alibi-detect's ``MMDDrift`` defines it: the kernel's bandwidth from the median
  heuristic on the reference (sigma^2 = median squared distance / 2, Gretton et al. 2012), the
  unbiased MMD^2 (zero diagonal), and the share of permuted MMD^2 at least as large as the
  observed one. Two differences, both stated in the result: the p-value counts the observed
  split as one of the permutations ((1 + hits) / (1 + permutations), Phipson & Smyth 2010, so it
  is never 0), and with ``groups`` whole groups (drives) are permuted, not frames.
- `compute_domain_auc`: Evidently's "model" (domain classifier) method: a classifier learns to
  tell reference from current embeddings and its ROC AUC is the drift score (0.5: no drift).
  Evidently scores one random half split; here every frame is scored out-of-fold (k-fold
  cross-validation), by group when ``groups`` are given.
- `compute_rate_test`: an event rate (per 100 km) against a reference rate, with the exact
  one-sided test of two Poisson rates (conditional binomial).

Why groups: frames of one drive are near-duplicates (the same road, light and weather a few
seconds apart). Frame-level permutations and folds treat them as independent, so two batches of
*different drives from the same mix* differ "significantly": the classifier learns to recognise
drives, and the permutation test's null (frames exchangeable) is false. Permuting and folding
whole drives tests what monitoring asks: are these drives unlike the training drives?
bench/drift.py measures both ways.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np

from longtail.errors import InputError


@dataclass(frozen=True)
class MMDResult:
    """An MMD two-sample test.

    Attributes:
        mmd2: the unbiased MMD^2 estimate (may be slightly negative without drift).
        p_value: share of permutations (the observed split counted once) with MMD^2 >= the observed one.
        sigma: the RBF kernel bandwidth (median heuristic on the reference), embedding units.
        permutations: permutations drawn (or every split, when ``exact``).
        exact: every assignment of groups to sides was enumerated.
        unit: what was permuted: "drive" (groups) or "frame".
        n_ref, n_cur: vectors per side; groups_ref, groups_cur: groups per side.
    """

    mmd2: float
    p_value: float
    sigma: float
    permutations: int
    exact: bool
    unit: str
    n_ref: int
    n_cur: int
    groups_ref: int
    groups_cur: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class DomainResult:
    """A domain classifier's verdict.

    Attributes:
        auc: out-of-fold ROC AUC of telling current (positive) from reference frames; 0.5 is chance.
        folds: cross-validation folds used.
        unit: what the folds keep together: "drive" or "frame".
        scores: out-of-fold probability that each *current* vector is current (high: unlike the reference).
    """

    auc: float
    folds: int
    unit: str
    scores: np.ndarray
    fold_auc: float = float("nan")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (without the per-frame scores)."""
        return {"auc": self.auc, "fold_auc": None if math.isnan(self.fold_auc) else self.fold_auc, "folds": self.folds,
                "unit": self.unit}


def _check(x_ref: np.ndarray, x_cur: np.ndarray, groups_ref: Any, groups_cur: Any, need: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x_ref, x_cur = np.asarray(x_ref, np.float64), np.asarray(x_cur, np.float64)
    if x_ref.ndim != 2 or x_cur.ndim != 2 or x_ref.shape[1] != x_cur.shape[1]:
        raise InputError(f"drift test: expected two [n, d] arrays of one dimension d, got {x_ref.shape} and {x_cur.shape}")
    if len(x_ref) < need or len(x_cur) < need:
        raise InputError(f"drift test: needs at least {need} vectors per side, got {len(x_ref)} reference and "
                         f"{len(x_cur)} current; monitor a bigger batch")
    if not np.isfinite(x_ref).all() or not np.isfinite(x_cur).all():
        raise InputError("drift test: embeddings hold NaN or inf; the model's backbone produced non-finite features")
    if (groups_ref is None) != (groups_cur is None):
        raise InputError("drift test: give groups for both sides or for neither")
    if groups_ref is None:
        return x_ref, x_cur, None
    g_ref = np.asarray([f"r:{g}" for g in groups_ref])
    g_cur = np.asarray([f"c:{g}" for g in groups_cur])
    if len(g_ref) != len(x_ref) or len(g_cur) != len(x_cur):
        raise InputError(f"drift test: {len(g_ref)}/{len(g_cur)} group labels for {len(x_ref)}/{len(x_cur)} vectors")
    return x_ref, x_cur, np.concatenate([g_ref, g_cur])


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances [len(a), len(b)], clipped at 0."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def median_sigma(x_ref: np.ndarray) -> float:
    """The RBF bandwidth of the median heuristic: sqrt(median off-diagonal squared distance / 2)."""
    d = squared_distances(x_ref, x_ref)
    off = d[~np.eye(len(d), dtype=bool)]
    med = float(np.median(off))
    return math.sqrt(med / 2.0) if med > 0 else 1.0


def _mmd2(K: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 of each row of ``sides`` (1.0 marks the current side) on a zero-diagonal kernel matrix."""
    a = sides
    b = 1.0 - sides
    m, n = a.sum(1), b.sum(1)
    Ka, Kb = a @ K, b @ K
    k_aa = (Ka * a).sum(1)
    k_bb = (Kb * b).sum(1)
    k_ab = (Ka * b).sum(1)
    return k_aa / (m * (m - 1)) + k_bb / (n * (n - 1)) - 2.0 * k_ab / (m * n)


def _assignments(units: np.ndarray, n_cur_units: int, permutations: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, bool]:
    """Rows of 0/1 over units: which units are "current". Every split when there are at most
    ``permutations`` of them (an exact test), else ``permutations`` random ones."""
    n_units = len(units)
    total = math.comb(n_units, n_cur_units)
    if total <= permutations:
        rows = np.zeros((total, n_units))
        for i, pick in enumerate(combinations(range(n_units), n_cur_units)):
            rows[i, list(pick)] = 1.0
        return rows, True
    rows = np.zeros((permutations, n_units))
    for i in range(permutations):
        rows[i, rng.choice(n_units, n_cur_units, replace=False)] = 1.0
    return rows, False


def compute_mmd(x_ref: np.ndarray, x_cur: np.ndarray, permutations: int = 200, seed: int = 0,
                groups_ref: Any = None, groups_cur: Any = None) -> MMDResult:
    """MMD two-sample test with an RBF kernel (median-heuristic bandwidth) and a permutation p-value.

    Args:
        x_ref: reference vectors [n_ref, d] (the training data's embeddings).
        x_cur: current vectors [n_cur, d] (the new batch's).
        permutations: random splits drawn; when whole groups are permuted and there are fewer
            distinct splits than this, every split is enumerated instead (exact test).
        seed: seed of the permutations.
        groups_ref, groups_cur: a group label (drive id) per vector; whole groups are permuted.
            None for both: vectors are permuted one by one (alibi-detect's test).

    Returns:
        The `MMDResult`.

    Raises:
        InputError: on mismatched shapes, fewer than 2 vectors per side, non-finite values, or
            groups given for one side only.
    """
    x_ref, x_cur, groups = _check(x_ref, x_cur, groups_ref, groups_cur, need=2)
    sigma = median_sigma(x_ref)
    x = np.concatenate([x_ref, x_cur])
    K = np.exp(-squared_distances(x, x) / (2.0 * sigma * sigma))
    np.fill_diagonal(K, 0.0)
    observed = np.r_[np.zeros(len(x_ref)), np.ones(len(x_cur))]
    rng = np.random.default_rng(seed)
    if groups is None:
        unit_of = np.arange(len(x))
        units_cur = len(x_cur)
        g_ref_n, g_cur_n = len(x_ref), len(x_cur)
    else:
        names, unit_of = np.unique(groups, return_inverse=True)
        units_cur = int(sum(str(n).startswith("c:") for n in names))
        g_ref_n, g_cur_n = len(names) - units_cur, units_cur
    rows, exact = _assignments(np.arange(unit_of.max() + 1), units_cur, permutations, rng)
    sides = rows[:, unit_of]
    # A split that leaves a side with fewer than 2 vectors has no unbiased MMD^2: drop it.
    ok = (sides.sum(1) >= 2) & ((1.0 - sides).sum(1) >= 2)
    stat = float(_mmd2(K, observed[None, :])[0])
    null = _mmd2(K, sides[ok])
    if exact:
        # The observed split is one of the enumerated ones: count every split once.
        p = float((null >= stat - 1e-12).sum() / max(len(null), 1))
    else:
        p = float((1 + (null >= stat - 1e-12).sum()) / (1 + len(null)))
    return MMDResult(mmd2=stat, p_value=p, sigma=sigma, permutations=len(null), exact=exact,
                     unit="frame" if groups is None else "drive", n_ref=len(x_ref), n_cur=len(x_cur),
                     groups_ref=g_ref_n, groups_cur=g_cur_n)


def compute_domain_auc(x_ref: np.ndarray, x_cur: np.ndarray, folds: int = 5, seed: int = 0,
                       groups_ref: Any = None, groups_cur: Any = None) -> DomainResult:
    """Out-of-fold ROC AUC of a logistic-regression domain classifier (current vs reference).

    Args:
        x_ref, x_cur: reference and current vectors [n, d].
        folds: cross-validation folds (fewer when a side has fewer groups).
        seed: seed of the fold assignment.
        groups_ref, groups_cur: a group label (drive id) per vector: a group is never split across
            folds (StratifiedGroupKFold). None for both: frames are folded one by one.

    Returns:
        The `DomainResult`, with each current vector's out-of-fold score.

    Raises:
        InputError: as `compute_mmd`; also when a side has fewer than 2 groups.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_ref, x_cur, groups = _check(x_ref, x_cur, groups_ref, groups_cur, need=2)
    x = np.concatenate([x_ref, x_cur])
    y = np.r_[np.zeros(len(x_ref), int), np.ones(len(x_cur), int)]
    if groups is None:
        k = min(folds, len(x_ref), len(x_cur))
        splitter: Any = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(x, y)
    else:
        per_side = min(len(set(groups[y == 0])), len(set(groups[y == 1])))
        if per_side < 2:
            raise InputError(f"domain classifier: needs at least 2 drives per side to cross-validate by drive, got "
                             f"{len(set(groups[y == 0]))} reference and {len(set(groups[y == 1]))} current drive(s)")
        k = min(folds, per_side)
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(x, y, groups)
    scores = np.zeros(len(x))
    per_fold, weights = [], []
    for train, test in splits:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        clf.fit(x[train], y[train])
        scores[test] = clf.predict_proba(x[test])[:, 1]
        if len(set(y[test])) == 2:
            per_fold.append(roc_auc_score(y[test], scores[test]))
            weights.append(len(test))
    fold_auc = float(np.average(per_fold, weights=weights)) if per_fold else float("nan")
    return DomainResult(auc=float(roc_auc_score(y, scores)), folds=k, unit="frame" if groups is None else "drive",
                        scores=scores[len(x_ref):], fold_auc=fold_auc)


@dataclass(frozen=True)
class RateTest:
    """An event rate against a reference rate.

    Attributes:
        count, km: events and kilometres driven in the batch; rate: per 100 km (None without km).
        ref_count, ref_km, ref_rate: the same for the reference.
        ratio: rate / ref_rate (None when either is undefined; inf when the reference saw none).
        p_value: one-sided exact test that the batch rate exceeds the reference rate.
    """

    count: int
    km: float
    rate: float | None
    ref_count: int
    ref_km: float
    ref_rate: float | None
    ratio: float | None
    p_value: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (an infinite ratio as None)."""
        out = asdict(self)
        if out["ratio"] is not None and not math.isfinite(out["ratio"]):
            out["ratio"] = None
        return out


def compute_rate_test(count: int, km: float, ref_count: int, ref_km: float) -> RateTest:
    """Per-100-km rate of an event in a batch against the reference, with the exact one-sided test.

    Under equal rates, given the total ``count + ref_count``, the batch's count is binomial with
    p = km / (km + ref_km); the p-value is P(X >= count) (Przyborowski & Wilenski 1940).

    Args:
        count: events in the batch; km: kilometres the batch drove.
        ref_count: events in the reference; ref_km: its kilometres.
    """
    from scipy.stats import binom

    rate = 100.0 * count / km if km > 0 else None
    ref_rate = 100.0 * ref_count / ref_km if ref_km > 0 else None
    if rate is None or ref_rate is None:
        ratio = None
    elif ref_rate == 0:
        ratio = math.inf if rate > 0 else None
    else:
        ratio = rate / ref_rate
    total = count + ref_count
    p = float(binom.sf(count - 1, total, km / (km + ref_km))) if km > 0 and ref_km > 0 and total > 0 else 1.0
    return RateTest(count=int(count), km=float(km), rate=rate, ref_count=int(ref_count), ref_km=float(ref_km),
                    ref_rate=ref_rate, ratio=ratio, p_value=p)


def total_variation(p: dict[str, float], q: dict[str, float]) -> float | None:
    """Total variation distance between two distributions over names (0: same, 1: disjoint);
    each is normalised first. None when either is empty."""
    sp, sq = sum(p.values()), sum(q.values())
    if sp <= 0 or sq <= 0:
        return None
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) / sp - q.get(k, 0.0) / sq) for k in keys)
