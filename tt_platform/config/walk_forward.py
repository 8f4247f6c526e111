"""Walk-forward evaluation settings: how the bars are cut into chronological folds, each trained
on its past and scored only on its own out-of-sample slice, and which seeds every fold trains.

Schemes (sizes are counted in bars, i.e. exchange sessions for daily data):

``single``
    One chronological train / validation / test split. Given in bars it is the first fold of
    the walk (train from the first bar), so it stays put as bars are appended; given as
    ``fractions`` (``{validation: 0.1, test: 0.3}``) the test slice is the latest share of the
    data and training takes what is left before it, so the split moves as data grows.
``rolling``
    A fixed-length training window of ``train_bars`` that slides forward by ``step_bars``.
``expanding``
    Training anchored at the first bar, growing by ``step_bars`` each fold; ``train_bars`` is
    the first fold's training length.

Each fold is laid out as ``train | purge | validation | purge | test`` (no validation slice
and one purge when ``validation_bars`` is 0). The purge gap keeps every training and
validation bar at least ``purge_bars`` before the test slice, so no reward or label earned
after a training bar can come from the test slice (Qlib's rolling workflow likewise ends
training ``horizon + 1`` days before the test). It must cover the label/reward horizon: the
last training bar's reward is earned on the next bar, so the purge is at least 1. Purged bars
may still serve as observation history (features only look back); they never train.

``embargo_bars`` is the gap after a test slice before its bars may train a model again. It
protects a model that is trained on data *after* the slice it is scored on (purged k-fold
cross-validation). In these forward-only walks every fold trains strictly before its own
test slice, and a later fold training on an earlier fold's test bars uses only its own
past, so the embargo can remove nothing that leaks: it is accepted and bounded (so a config
carries over to a scheme that trains on both sides), but it changes no fold and is left out
of ``key()``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from tt_platform.config.strict import StrictModel
from tt_platform.config.training import SEED_LIMIT


# sane upper bounds: 10M bars is some 100 years of minute bars
MAX_BARS = 10_000_000
MAX_FOLDS = 1_000
MAX_SEEDS = 32

Scheme = Literal["single", "rolling", "expanding"]


class SplitFractions(StrictModel):
    """A ``single`` split as shares of the bars: the latest ``test`` share is tested, the
    ``validation`` share before it validates, and training takes the rest (less the purges)."""

    validation: float = Field(0.0, ge=0, lt=1, description="share of the bars for validation")
    test: float = Field(0.3, gt=0, lt=1, description="share of the bars held out for the test")

    @field_validator("test")
    @classmethod
    def _leaves_bars_to_train(cls, test: float, info: ValidationInfo) -> float:
        validation = info.data.get("validation")
        if validation is not None and validation + test >= 1:
            raise ValueError(f"validation {validation} + test {test} leave no bars to train on "
                             "(their sum must be below 1)")
        return test


class WalkForwardConfig(StrictModel):
    """Chronological folds (single split, rolling or expanding walk) and the seeds per fold."""

    # validators below compare with fields declared above them (pydantic validates in order)
    scheme: Scheme = Field("expanding", description="single | rolling | expanding")
    min_train_bars: int = Field(60, ge=2, le=MAX_BARS,
                                description="fewest bars a fold may train on")
    train_bars: int = Field(504, ge=2, le=MAX_BARS,
                            description="training bars per fold (rolling), of the first fold "
                                        "(expanding), of the split (single)")
    validation_bars: int = Field(0, ge=0, le=MAX_BARS,
                                 description="validation bars between training and test; 0: none")
    test_bars: int = Field(63, ge=2, le=MAX_BARS, description="out-of-sample bars per fold")
    step_bars: int | None = Field(None, ge=2, le=MAX_BARS,
                                  description="bars between fold starts; null: test_bars (test "
                                              "slices tile the data)")
    purge_bars: int = Field(5, ge=1, le=MAX_BARS,
                            description="bars dropped between training (and validation) and the "
                                        "next slice; at least the label/reward horizon")
    embargo_bars: int = Field(0, ge=0, le=MAX_BARS,
                              description="bars after a test slice kept out of training; no "
                                          "effect in forward-only walks (see module docstring)")
    max_folds: int | None = Field(None, ge=1, le=MAX_FOLDS,
                                  description="keep only the latest this many folds; null: all")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, max_length=MAX_SEEDS,
                             description="training seeds per fold, reported as a spread")
    fractions: SplitFractions | None = Field(
        None, description="scheme single only: size the split as shares of the bars; when set "
                          "it decides the split and the *_bars sizes are not used")

    @field_validator("train_bars")
    @classmethod
    def _at_least_min_train(cls, train_bars: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min_train_bars")
        if minimum is not None and train_bars < minimum:
            raise ValueError(f"{train_bars} is fewer than min_train_bars {minimum}")
        return train_bars

    @field_validator("step_bars")
    @classmethod
    def _test_slices_do_not_overlap(cls, step_bars: int | None, info: ValidationInfo) -> int | None:
        test_bars = info.data.get("test_bars")
        if step_bars is not None and test_bars is not None and step_bars < test_bars:
            raise ValueError(f"{step_bars} is less than test_bars {test_bars}: consecutive test "
                             "slices would overlap")
        return step_bars

    @field_validator("seeds")
    @classmethod
    def _distinct_valid_seeds(cls, seeds: list[int]) -> list[int]:
        out_of_range = [seed for seed in seeds if not 0 <= seed < SEED_LIMIT]
        if out_of_range:
            raise ValueError(f"{out_of_range[0]} is not a seed: seeds are 0 .. {SEED_LIMIT - 1}")
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if repeated:
            raise ValueError(f"seed {repeated[0]} is given more than once: seeds must be distinct")
        return seeds

    @field_validator("fractions")
    @classmethod
    def _fractions_only_for_single(cls, fractions: SplitFractions | None,
                                   info: ValidationInfo) -> SplitFractions | None:
        scheme = info.data.get("scheme")
        if fractions is not None and scheme != "single":
            raise ValueError(f"only scheme 'single' is sized by fractions; a {scheme} walk is "
                             "sized in bars (train_bars, test_bars, step_bars)")
        return fractions

    @property
    def step(self) -> int:
        """Bars between consecutive folds' test starts (``step_bars``, default ``test_bars``)."""
        return self.test_bars if self.step_bars is None else self.step_bars

    def key_payload(self) -> dict[str, Any]:
        """What shapes the folds and their training, as JSON values: settings a scheme does
        not use are left out, so two configs that plan the same folds give the same payload."""
        payload: dict[str, Any] = {
            "scheme": self.scheme,
            "min_train_bars": self.min_train_bars,
            "purge_bars": self.purge_bars,
            "seeds": sorted(self.seeds),  # the same seeds in another order train the same policies
        }
        if self.fractions is not None:
            payload["fractions"] = self.fractions.model_dump(mode="json")
        else:
            payload |= {"train_bars": self.train_bars, "validation_bars": self.validation_bars,
                        "test_bars": self.test_bars}
        if self.scheme != "single":
            payload |= {"step_bars": self.step, "max_folds": self.max_folds}
        return payload

    def key(self) -> str:
        """A stable 16-hex-digit identity of ``key_payload()`` (for config hashes and names)."""
        text = json.dumps(self.key_payload(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_walk_forward_config(data: Any, source: str = "config") -> WalkForwardConfig:
    """Validate a mapping into a ``WalkForwardConfig``; a bad value is a ``RunConfigError`` with
    one line per problem naming the source and key (``run.yaml: test_bars: ...``), written by
    the run config's own formatter so both read alike."""
    from tt_platform.config.run_config import RunConfigError, _format_errors

    try:
        return WalkForwardConfig.model_validate({} if data is None else data)
    except ValidationError as exc:
        raise RunConfigError("\n".join(_format_errors(source, exc))) from None


class GateConfig(StrictModel):
    """The promotion gate: what a walk-forward must show before its policy may trade."""

    min_sharpe_margin: float = Field(
        0.0, ge=-5.0, le=5.0,
        description="out-of-sample Sharpe the policy must exceed every baseline's by (annualised)",
    )
    min_deflated_sharpe: float = Field(
        0.95, ge=0.0, le=1.0,
        description="deflated Sharpe ratio (probability the true Sharpe > 0 after all trials) to pass",
    )
    benchmark: str = Field("SPY", min_length=1, max_length=32,
                           description="symbol held by the buy-and-hold baseline when in the universe")
    promote: bool = Field(True, description="give a passing policy the MLflow alias 'champion' when it beats the holder")
