import math

import empyrical as ep
import numpy as np
import pytest

from tt_platform.evaluation.significance import (
    SharpeEstimate,
    bootstrap_confidence_interval,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
)


def normal_cdf(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def ar1(n, phi, seed, mean=0.0005, scale=0.01):
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, scale, n)
    values = np.empty(n)
    values[0] = noise[0]
    for t in range(1, n):
        values[t] = phi * values[t - 1] + noise[t]
    return mean + values


# ---------------------------------------------------------------------------- deflated Sharpe ratio
def test_dsr_reproduces_the_worked_example_of_bailey_and_lopez_de_prado_2014():
    """Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", SSRN 2460551, numerical example.

    Annualised SR = 2.5 over T = 1250 daily returns (5 years of 250 days), N = 100 trials whose
    annualised Sharpe ratios have variance 0.5, skew -3, kurtosis 10. In daily units
    SR = 2.5/sqrt(250) and V = 0.5/250. The paper reports SR0 ~ 0.1132 daily (annualised
    ~ 1.7898, i.e. the rounded 0.1132 * sqrt(250); unrounded it is 1.7894) and DSR ~ 0.9004.
    """
    example = SharpeEstimate(sharpe=2.5 / math.sqrt(250), n_observations=1250, skew=-3.0, kurtosis=10.0)
    result = deflated_sharpe_ratio(example, n_trials=100, trial_sr_variance=0.5 / 250)
    assert result.sr0 == pytest.approx(0.1132, abs=1e-4)
    assert result.sr0 * math.sqrt(250) == pytest.approx(1.7898, abs=1e-3)
    assert result.dsr == pytest.approx(0.9004, abs=1e-4)
    assert result.psr > 0.9999  # against a zero benchmark the same track record is near certain
    assert (result.n_trials, result.n_observations, result.skew, result.kurtosis) == (100, 1250, -3.0, 10.0)


def test_dsr_falls_as_more_trials_are_counted():
    returns = np.random.default_rng(3).normal(0.001, 0.01, 750)
    dsrs = [deflated_sharpe_ratio(returns, n, trial_sr_variance=0.002).dsr for n in (1, 2, 5, 10, 100, 1000)]
    assert all(later < earlier for earlier, later in zip(dsrs, dsrs[1:]))


def test_one_trial_has_nothing_to_deflate_so_dsr_equals_psr_against_zero():
    returns = np.random.default_rng(4).normal(0.0005, 0.01, 500)
    result = deflated_sharpe_ratio(returns, n_trials=1)
    assert result.sr0 == 0.0
    assert result.dsr == result.psr == pytest.approx(probabilistic_sharpe_ratio(returns, 0.0))
    assert expected_max_sharpe(1, 0.5) == 0.0


def test_trial_sharpes_give_their_sample_variance():
    returns = np.random.default_rng(5).normal(0.0005, 0.01, 500)
    result = deflated_sharpe_ratio(returns, n_trials=10, trial_sharpes=[0.1, 0.2, 0.3])
    assert result.trial_sr_variance == pytest.approx(0.01)
    assert result.sr0 == pytest.approx(expected_max_sharpe(10, 0.01))


def test_expected_max_sharpe_matches_the_mean_maximum_of_simulated_trials():
    # the false strategy theorem: E[max of N trial SRs] with true SR 0 and SR variance 1
    simulated = np.random.default_rng(6).standard_normal((20_000, 100)).max(axis=1).mean()
    assert expected_max_sharpe(100, 1.0) == pytest.approx(simulated, abs=0.05)
    assert expected_max_sharpe(100, 4.0) == pytest.approx(2.0 * expected_max_sharpe(100, 1.0))
    assert expected_max_sharpe(1000, 1.0) > expected_max_sharpe(100, 1.0)


def test_dsr_refuses_what_it_cannot_deflate_for():
    returns = np.random.default_rng(7).normal(0.0005, 0.01, 100)
    with pytest.raises(ValueError, match="give trial_sharpes or trial_sr_variance"):
        deflated_sharpe_ratio(returns, n_trials=5)
    with pytest.raises(ValueError, match="not both"):
        deflated_sharpe_ratio(returns, n_trials=5, trial_sharpes=[0.1, 0.2], trial_sr_variance=0.01)
    with pytest.raises(ValueError, match="n_trials counts every trial"):
        deflated_sharpe_ratio(returns, n_trials=2, trial_sharpes=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="at least 2 trial Sharpe ratios"):
        deflated_sharpe_ratio(returns, n_trials=5, trial_sharpes=[0.1])
    for bad in (0, 2.5, math.nan, True):
        with pytest.raises(ValueError, match="n_trials must be a whole number"):
            deflated_sharpe_ratio(returns, n_trials=bad, trial_sr_variance=0.01)
    with pytest.raises(ValueError, match="trial_sr_variance must be"):
        expected_max_sharpe(10, -0.1)


# ---------------------------------------------------------------------------- probabilistic Sharpe ratio
def test_psr_is_one_half_when_the_estimate_equals_the_benchmark():
    estimate = SharpeEstimate(sharpe=0.08, n_observations=500, skew=-1.0, kurtosis=6.0)
    assert probabilistic_sharpe_ratio(estimate, benchmark_sr=0.08) == pytest.approx(0.5)


def test_psr_is_symmetric_around_the_estimate():
    estimate = SharpeEstimate(sharpe=0.05, n_observations=300, skew=-0.5, kurtosis=5.0)
    above = probabilistic_sharpe_ratio(estimate, benchmark_sr=0.05 + 0.03)
    below = probabilistic_sharpe_ratio(estimate, benchmark_sr=0.05 - 0.03)
    assert above + below == pytest.approx(1.0)
    assert below > 0.5 > above


def test_psr_of_normal_returns_matches_the_textbook_formula():
    # skew 0, kurtosis 3: Phi(SR * sqrt(T - 1) / sqrt(1 + SR^2 / 2))
    estimate = SharpeEstimate(sharpe=0.1, n_observations=101)
    assert probabilistic_sharpe_ratio(estimate) == pytest.approx(normal_cdf(0.1 * 10 / math.sqrt(1.005)))


def test_psr_grows_with_the_track_record_and_falls_with_negative_skew_and_fat_tails():
    def psr(n=250, skew=0.0, kurtosis=3.0):
        return probabilistic_sharpe_ratio(SharpeEstimate(0.1, n, skew, kurtosis))

    assert psr(n=1000) > psr(n=250) > psr(n=50)
    assert psr(skew=-2.0) < psr() < psr(skew=1.0)
    assert psr(kurtosis=12.0) < psr()


def test_estimate_from_returns_uses_per_period_sharpe_and_plain_kurtosis():
    returns = np.array([0.01, -0.02, 0.03, 0.0, 0.015, -0.005])
    estimate = SharpeEstimate.from_returns(returns)
    centred = returns - returns.mean()
    m2, m3, m4 = (np.mean(centred**k) for k in (2, 3, 4))
    assert estimate.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert estimate.sharpe * math.sqrt(252) == pytest.approx(ep.sharpe_ratio(returns, annualization=252))
    assert estimate.skew == pytest.approx(m3 / m2**1.5)
    assert estimate.kurtosis == pytest.approx(m4 / m2**2)
    assert estimate.n_observations == 6


def test_psr_refuses_undefined_inputs_with_a_named_reason():
    with pytest.raises(ValueError, match="at least 3"):
        probabilistic_sharpe_ratio([0.01, 0.02])
    with pytest.raises(ValueError, match="zero variance"):
        probabilistic_sharpe_ratio([0.01, 0.01, 0.01, 0.01])
    with pytest.raises(ValueError, match="NaN"):
        probabilistic_sharpe_ratio([0.01, math.nan, 0.02])
    with pytest.raises(ValueError, match="excess kurtosis"):
        SharpeEstimate(sharpe=0.1, n_observations=100, skew=0.0, kurtosis=0.0)
    with pytest.raises(ValueError, match="inconsistent"):
        SharpeEstimate(sharpe=1.0, n_observations=100, skew=3.0, kurtosis=2.0)
    with pytest.raises(ValueError, match="at least 3 observations"):
        SharpeEstimate(sharpe=0.1, n_observations=2)


# ---------------------------------------------------------------------------- bootstrap
def test_bootstrap_interval_contains_the_point_estimate():
    returns = np.random.default_rng(8).normal(0.0005, 0.01, 1000)
    interval = bootstrap_confidence_interval(returns, n_resamples=500, seed=1)
    assert interval.estimate == pytest.approx(sharpe_ratio(returns))
    assert interval.low < interval.estimate < interval.high
    assert (interval.level, interval.n_resamples, interval.block_length, interval.n_undefined) == (0.95, 500, 10, 0)


def test_bootstrap_is_deterministic_for_a_seed():
    returns = ar1(300, 0.3, seed=9)
    for method in ("stationary", "circular"):
        first = bootstrap_confidence_interval(returns, n_resamples=300, seed=42, method=method)
        assert bootstrap_confidence_interval(returns, n_resamples=300, seed=42, method=method) == first
        assert bootstrap_confidence_interval(returns, n_resamples=300, seed=43, method=method) != first


def test_bootstrap_interval_narrows_with_more_data():
    long = np.random.default_rng(10).normal(0.0005, 0.01, 4000)
    short_ci = bootstrap_confidence_interval(long[:250], n_resamples=500, seed=1)
    long_ci = bootstrap_confidence_interval(long, n_resamples=500, seed=1)
    # the width shrinks like 1/sqrt(T): 4x here
    assert long_ci.high - long_ci.low < 0.5 * (short_ci.high - short_ci.low)


@pytest.mark.parametrize("method", ["stationary", "circular"])
def test_block_bootstrap_widens_the_interval_of_autocorrelated_returns(method):
    # with phi = 0.8 the variance of the mean is (1 + phi) / (1 - phi) = 9 times the i.i.d. one:
    # resampling single returns would hide that, blocks keep it
    returns = ar1(2000, 0.8, seed=11)
    iid = bootstrap_confidence_interval(returns, np.mean, n_resamples=500, block_length=1, seed=1, method=method)
    blocks = bootstrap_confidence_interval(returns, np.mean, n_resamples=500, block_length=50, seed=1, method=method)
    assert blocks.high - blocks.low > 1.8 * (iid.high - iid.low)


def test_flat_resamples_are_left_out_and_counted():
    returns = np.array([0.0] * 8 + [0.01, -0.005])
    interval = bootstrap_confidence_interval(returns, n_resamples=500, block_length=1, seed=2)
    assert 0 < interval.n_undefined < 500  # ~0.8^10 of the resamples draw only zeros
    assert math.isfinite(interval.low) and math.isfinite(interval.high)


def test_bootstrap_refuses_bad_arguments():
    returns = np.random.default_rng(12).normal(0.0, 0.01, 50)
    with pytest.raises(ValueError, match="level"):
        bootstrap_confidence_interval(returns, level=95)
    with pytest.raises(ValueError, match="block_length"):
        bootstrap_confidence_interval(returns, block_length=0)
    with pytest.raises(ValueError, match="block_length"):
        bootstrap_confidence_interval(returns, block_length=51)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_confidence_interval(returns, n_resamples=0)
    with pytest.raises(ValueError, match="method"):
        bootstrap_confidence_interval(returns, method="moving")
    with pytest.raises(ValueError, match="undefined"):
        bootstrap_confidence_interval(np.zeros(50))
