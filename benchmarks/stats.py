"""Interval estimates for benchmark figures: Wilson rates, Student-t means, paired differences.

Every rate carries a Wilson 95% interval (:func:`wilson`); means carry a Student-t 95%
interval (:func:`mean_ci`). :func:`paired_comparison` compares two policies episode by
episode over their shared starts or decks. Formatting them into tables is
:mod:`benchmarks.tables`' job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ld_envs.errors import InvalidArgument, unknown_name

#: the 97.5% quantile of the standard normal distribution
Z95 = 1.959963984540054

# Student t 97.5% quantiles for 1..30 degrees of freedom.
_T975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
    2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
    2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
    2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (95% by default).

    Unlike the normal (Wald) interval it stays inside [0, 1] and is not degenerate at
    0% or 100%, which the paper's tables are full of (0/200 -> [0, 1.9%]).
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise InvalidArgument(f"wilson needs 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends (no rounding residue)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (to about 1e-5)."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z95  # Cornish-Fisher expansion, exact enough beyond 30 degrees of freedom
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% interval (``lo``/``hi`` are NaN when it cannot be had)."""

    value: float
    lo: float
    hi: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


def rate(k: int, n: int) -> Estimate:
    """A proportion with its Wilson interval."""
    lo, hi = wilson(k, n)
    return Estimate(k / n if n else math.nan, lo, hi, n)


def mean_ci(values: Sequence[float]) -> Estimate:
    """A mean with its Student-t 95% interval (NaN interval below two values)."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1)
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t975(n - 1) * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, n)


@dataclass(frozen=True)
class Paired:
    """A paired difference ``a - b`` over shared episodes."""

    a: str
    b: str
    metric: str
    #: shared episodes the difference is taken over
    n: int
    #: episodes where the two policies' figures differ
    n_differ: int
    diff: Estimate
    #: the unpaired 95% half-width of the same difference, for contrast
    unpaired_half_width: float


def paired_comparison(
    records: Sequence[Mapping[str, Any]], a: str, b: str, metric: str = "reward"
) -> Paired:
    """Mean per-episode difference of ``metric`` between policies ``a`` and ``b``.

    Pairing is what makes small differences visible. Two policies play the *same* starts
    (pursuit) or decks (21 points) in a sweep, so most of the luck of an episode is
    common to both and cancels in the per-episode difference. Unpaired, a 21-point reward
    (+1/-1/0) has a standard deviation near 0.95, so the 95% interval of the difference of
    two 200-game means is about +-1.96 * 0.95 * sqrt(2/200) = +-0.19: two policies whose
    expected rewards differ by 0.04 cannot be told apart. Paired, the games where both
    policies make the same choices contribute a difference of exactly 0, the standard
    deviation of the difference shrinks with them, and the interval narrows accordingly.

    ``metric``: ``reward``, ``success`` (1/0), ``win`` (1/0), ``violations``, or ``steps``
    (taken over episodes where both succeeded, as "average steps of success").
    """
    by_a = {r["episode"]: r for r in records if r["policy"] == a}
    by_b = {r["episode"]: r for r in records if r["policy"] == b}
    for name, got in ((a, by_a), (b, by_b)):
        if not got:
            known = sorted({str(r["policy"]) for r in records})
            raise unknown_name("policy in these records", name, known)
    shared = sorted(set(by_a) & set(by_b))
    pairs: list[tuple[float, float]] = []
    for ep in shared:
        ra, rb = by_a[ep], by_b[ep]
        if metric == "steps":
            if ra["outcome"] == "success" and rb["outcome"] == "success":
                pairs.append((float(ra["steps"]), float(rb["steps"])))
        else:
            pairs.append((_metric(ra, metric), _metric(rb, metric)))
    diffs = [x - y for x, y in pairs]
    est = mean_ci(diffs)
    xa, xb = [x for x, _ in pairs], [y for _, y in pairs]
    unpaired = math.nan
    if len(pairs) >= 2:
        va, vb = _var(xa), _var(xb)
        unpaired = Z95 * math.sqrt(va / len(xa) + vb / len(xb))
    return Paired(a, b, metric, len(pairs), sum(d != 0 for d in diffs), est, unpaired)


def _var(xs: Sequence[float]) -> float:
    m = math.fsum(xs) / len(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def _metric(rec: Mapping[str, Any], metric: str) -> float:
    if metric == "reward":
        return float(rec["reward"])
    if metric == "success":
        return float(rec["outcome"] == "success")
    if metric == "win":
        return float(rec["outcome"] == "win")
    if metric == "violations":
        return float(rec["violations"])
    raise InvalidArgument(
        f"unknown paired metric {metric!r}; known: reward, success, win, violations, steps"
    )
