"""Is a Sharpe ratio more than luck? Probabilistic and deflated Sharpe ratios, bootstrap intervals.

Bailey & López de Prado: "The Sharpe Ratio Efficient Frontier" (2012) for the probabilistic
Sharpe ratio (PSR) and "The Deflated Sharpe Ratio" (2014, SSRN 2460551) for the deflated one
(DSR). Units matter here and are easy to get wrong, so every Sharpe ratio in this module is
**per period** (mean / standard deviation of the period returns, risk-free rate 0), never
annualised: a daily Sharpe ratio of 0.1 is an annualised 0.1 * sqrt(252) ~ 1.59. Kurtosis is
**plain** kurtosis (3 for a normal distribution), not excess kurtosis.

    PSR(SR*) = Phi[(SR - SR*) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurtosis - 1) / 4 * SR^2)]
    SR0      = sqrt(V[SR_n]) * [(1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e))]
    DSR      = PSR(SR0)

with g the Euler-Mascheroni constant, N the number of independent trials and V[SR_n] the
variance of the trials' (per-period) Sharpe ratios. N counts every trial behind the selected
strategy: each seed, each fold configuration and each tuning trial recorded for the study.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

MIN_OBSERVATIONS = 3  # skewness needs 3 points; sqrt(T - 1) and the sample std need 2

ArrayLike = Sequence[float] | np.ndarray


def _as_returns(returns: ArrayLike) -> np.ndarray:
    values = np.asarray(returns, dtype=np.float64).reshape(-1)
    if len(values) < MIN_OBSERVATIONS:
        raise ValueError(f"need at least {MIN_OBSERVATIONS} returns, got {len(values)}")
    if not np.all(np.isfinite(values)):
        raise ValueError("returns contain NaN or infinite values")
    return values


def sharpe_ratio(returns: ArrayLike) -> float:
    """Per-period Sharpe ratio: mean / sample standard deviation (ddof=1), risk-free rate 0.

    NaN when it is undefined (fewer than 2 returns, or all returns equal), so a bootstrap
    resample that happens to be flat does not stop the whole interval. Equals empyrical's
    annualised Sharpe ratio divided by sqrt(periods per year).
    """
    values = np.asarray(returns, dtype=np.float64).reshape(-1)
    if len(values) < 2 or np.ptp(values) == 0.0:  # ptp, not std == 0: a constant series has std ~1e-18
        return math.nan
    return float(np.mean(values) / np.std(values, ddof=1))


@dataclass(frozen=True)
class SharpeEstimate:
    """What the PSR needs from a return series, all per period.

    sharpe: per-period Sharpe ratio. n_observations: T, the number of returns. skew: the
    returns' skewness. kurtosis: their plain (non-excess) kurtosis, 3 for normal returns.
    """

    sharpe: float
    n_observations: int
    skew: float = 0.0
    kurtosis: float = 3.0

    def __post_init__(self) -> None:
        if self.n_observations < MIN_OBSERVATIONS:
            raise ValueError(f"need at least {MIN_OBSERVATIONS} observations (T), got {self.n_observations}")
        if not all(math.isfinite(v) for v in (self.sharpe, self.skew, self.kurtosis)):
            raise ValueError(f"Sharpe ratio, skew and kurtosis must be finite, got {self}")
        if self.kurtosis < 1.0:
            # every distribution has kurtosis >= 1; below that it is almost surely excess kurtosis
            raise ValueError(f"kurtosis must be plain kurtosis (>= 1, 3 for normal returns), got {self.kurtosis}: "
                             "was excess kurtosis passed?")
        if self._sharpe_variance_factor() <= 0.0:
            raise ValueError(f"skew {self.skew} and kurtosis {self.kurtosis} are inconsistent (no distribution has "
                             "kurtosis < 1 + skew^2): the Sharpe ratio's standard error is undefined")

    @classmethod
    def from_returns(cls, returns: ArrayLike) -> SharpeEstimate:
        """Estimate from period returns; skew and kurtosis are the (biased) sample moments, as in skfolio."""
        values = _as_returns(returns)
        if np.ptp(values) == 0.0:
            raise ValueError("returns have zero variance (all equal): the Sharpe ratio is undefined")
        return cls(
            sharpe=sharpe_ratio(values),
            n_observations=len(values),
            skew=float(stats.skew(values)),
            kurtosis=float(stats.kurtosis(values, fisher=False)),
        )

    def _sharpe_variance_factor(self) -> float:
        # (T - 1) * Var[SR_hat] for non-normal returns (Mertens 2002)
        return 1.0 - self.skew * self.sharpe + (self.kurtosis - 1.0) / 4.0 * self.sharpe**2


def _estimate(sample: ArrayLike | SharpeEstimate) -> SharpeEstimate:
    return sample if isinstance(sample, SharpeEstimate) else SharpeEstimate.from_returns(sample)


def probabilistic_sharpe_ratio(sample: ArrayLike | SharpeEstimate, benchmark_sr: float = 0.0) -> float:
    """Probability that the true per-period Sharpe ratio exceeds ``benchmark_sr`` (per period).

    ``sample`` is either the period returns or a ``SharpeEstimate`` (Sharpe ratio, T, skew,
    kurtosis). 0.5 when the estimate equals the benchmark; it grows with T and falls with
    negative skew and fat tails.
    """
    estimate = _estimate(sample)
    z = (estimate.sharpe - benchmark_sr) * math.sqrt(estimate.n_observations - 1)
    return float(stats.norm.cdf(z / math.sqrt(estimate._sharpe_variance_factor())))


def _check_n_trials(n_trials: int) -> None:
    whole = isinstance(n_trials, numbers.Real) and not isinstance(n_trials, bool) and float(n_trials).is_integer()
    if not whole or n_trials < 1:
        raise ValueError(f"n_trials must be a whole number >= 1, got {n_trials!r}")


def expected_max_sharpe(n_trials: int, trial_sr_variance: float) -> float:
    """SR0: the expected maximum per-period Sharpe ratio of ``n_trials`` unskilled trials.

    The trials' true Sharpe ratios are all 0 and their estimates have variance
    ``trial_sr_variance`` (per-period units squared: an annualised variance divided by the
    periods per year). One trial has nothing to select from, so SR0 = 0.
    """
    _check_n_trials(n_trials)
    if not math.isfinite(trial_sr_variance) or trial_sr_variance < 0.0:
        raise ValueError(f"trial_sr_variance must be a finite number >= 0, got {trial_sr_variance}")
    if n_trials == 1:
        return 0.0
    gamma = np.euler_gamma
    # false strategy theorem: E[max of N standard normals], approximated with extreme value theory
    expected_max_z = (1.0 - gamma) * stats.norm.ppf(1.0 - 1.0 / n_trials) + gamma * stats.norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(trial_sr_variance) * expected_max_z)


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio and what went into it. Sharpe ratios are per period.

    psr: P[true SR > 0]. dsr: P[true SR > sr0], the probability that the strategy beats the
    best of ``n_trials`` unskilled trials. sr0: expected maximum Sharpe ratio of those trials.
    n_observations: T, the number of returns. kurtosis: plain (3 for normal returns).
    """

    sharpe: float
    psr: float
    dsr: float
    sr0: float
    n_trials: int
    n_observations: int
    skew: float
    kurtosis: float
    trial_sr_variance: float


def _trial_sr_variance(n_trials: int, trial_sharpes: ArrayLike | None, trial_sr_variance: float | None) -> float:
    if trial_sharpes is not None and trial_sr_variance is not None:
        raise ValueError("give either trial_sharpes or trial_sr_variance, not both")
    if trial_sharpes is None:
        if trial_sr_variance is None:
            if n_trials == 1:
                return 0.0  # nothing was selected, so nothing to deflate for
            raise ValueError(f"{n_trials} trials: give trial_sharpes or trial_sr_variance to deflate for them")
        return float(trial_sr_variance)
    sharpes = np.asarray(trial_sharpes, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(sharpes)):
        raise ValueError("trial_sharpes contain NaN or infinite values")
    if len(sharpes) > n_trials:
        raise ValueError(f"{len(sharpes)} trial Sharpe ratios but n_trials is {n_trials}: n_trials counts every trial")
    if len(sharpes) < 2:
        if n_trials == 1:
            return 0.0
        raise ValueError(f"need at least 2 trial Sharpe ratios to estimate their variance, got {len(sharpes)}")
    return float(np.var(sharpes, ddof=1))


def deflated_sharpe_ratio(
    sample: ArrayLike | SharpeEstimate,
    n_trials: int,
    *,
    trial_sharpes: ArrayLike | None = None,
    trial_sr_variance: float | None = None,
) -> DeflatedSharpe:
    """The deflated Sharpe ratio of the selected strategy's returns (or its ``SharpeEstimate``).

    n_trials: every trial behind the selection (seeds x fold configurations x tuning trials
    recorded for the study), including the selected one. trial_sharpes: the trials' per-period
    Sharpe ratios, whose sample variance is used; or give trial_sr_variance directly (per
    period). With one trial neither is needed: SR0 = 0 and DSR = PSR(0).
    """
    _check_n_trials(n_trials)
    estimate = _estimate(sample)
    variance = _trial_sr_variance(n_trials, trial_sharpes, trial_sr_variance)
    sr0 = expected_max_sharpe(n_trials, variance)
    return DeflatedSharpe(
        sharpe=float(estimate.sharpe),
        psr=probabilistic_sharpe_ratio(estimate, 0.0),
        dsr=probabilistic_sharpe_ratio(estimate, sr0),
        sr0=sr0,
        n_trials=int(n_trials),
        n_observations=int(estimate.n_observations),
        skew=float(estimate.skew),
        kurtosis=float(estimate.kurtosis),
        trial_sr_variance=variance,
    )


# ---------------------------------------------------------------------------- bootstrap
BlockMethod = Literal["stationary", "circular"]


@dataclass(frozen=True)
class ConfidenceInterval:
    """A percentile bootstrap interval of ``statistic`` (in the statistic's own units).

    n_undefined: resamples whose statistic was NaN (e.g. a flat resample's Sharpe ratio),
    left out of the quantiles.
    """

    estimate: float
    low: float
    high: float
    level: float
    n_resamples: int
    block_length: int
    method: str
    n_undefined: int


def default_block_length(n_observations: int) -> int:
    """T^(1/3), the rate-optimal order of the block length for block bootstraps (Hall et al. 1995)."""
    return max(1, round(n_observations ** (1.0 / 3.0)))


def stationary_bootstrap_indices(
    n: int, n_resamples: int, mean_block_length: float, rng: np.random.Generator
) -> np.ndarray:
    """Politis & Romano (1994): blocks of geometric length (mean ``mean_block_length``), wrapping at the end."""
    starts_new_block = rng.random((n_resamples, n)) < 1.0 / mean_block_length
    starts_new_block[:, 0] = True
    random_starts = rng.integers(0, n, size=(n_resamples, n))
    positions = np.arange(n)
    # for each position, where its block started and at which index of the series
    block_start = np.maximum.accumulate(np.where(starts_new_block, positions, 0), axis=1)
    start_index = np.take_along_axis(random_starts, block_start, axis=1)
    return (start_index + positions - block_start) % n


def circular_bootstrap_indices(n: int, n_resamples: int, block_length: int, rng: np.random.Generator) -> np.ndarray:
    """Politis & Romano (1992): blocks of fixed length from random starts, wrapping at the end."""
    n_blocks = -(-n // block_length)
    starts = rng.integers(0, n, size=(n_resamples, n_blocks, 1))
    return ((starts + np.arange(block_length)) % n).reshape(n_resamples, -1)[:, :n]


def bootstrap_confidence_interval(
    returns: ArrayLike,
    statistic: Callable[[np.ndarray], float] = sharpe_ratio,
    level: float = 0.95,
    n_resamples: int = 2000,
    block_length: int | None = None,
    seed: int | None = 0,
    method: BlockMethod = "stationary",
) -> ConfidenceInterval:
    """Block bootstrap confidence interval of ``statistic(returns)`` (default: per-period Sharpe).

    Resampling blocks of consecutive returns rather than single returns keeps their
    autocorrelation (volatility clusters, trends); ``block_length=1`` is the i.i.d. bootstrap.
    block_length defaults to T^(1/3); for the stationary bootstrap it is the mean block length.
    The same seed gives the same interval.
    """
    values = _as_returns(returns)
    n = len(values)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    block_length = default_block_length(n) if block_length is None else block_length
    if not 1 <= block_length <= n:
        raise ValueError(f"block_length must be between 1 and the number of returns ({n}), got {block_length}")
    estimate = float(statistic(values))
    if not math.isfinite(estimate):
        raise ValueError(f"the statistic of the returns themselves is undefined ({estimate})")
    rng = np.random.default_rng(seed)
    if method == "stationary":
        indices = stationary_bootstrap_indices(n, n_resamples, block_length, rng)
    elif method == "circular":
        indices = circular_bootstrap_indices(n, n_resamples, block_length, rng)
    else:
        raise ValueError(f"method must be 'stationary' or 'circular', got {method!r}")
    replicates = np.array([statistic(values[row]) for row in indices], dtype=np.float64)
    defined = replicates[np.isfinite(replicates)]
    if len(defined) == 0:
        raise ValueError("the statistic is undefined on every bootstrap resample")
    low, high = np.quantile(defined, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return ConfidenceInterval(
        estimate=estimate,
        low=float(low),
        high=float(high),
        level=level,
        n_resamples=n_resamples,
        block_length=int(block_length),
        method=method,
        n_undefined=int(len(replicates) - len(defined)),
    )
