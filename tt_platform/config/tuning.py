"""Hyperparameter tuning settings: which ``training`` keys ``tt tune`` samples, over which
ranges, and how a trial is scored (``tt_platform.pipeline.tuning``).

The search space is a list of ``SearchParam``: one numeric ``training`` key each, with either a
range (``low`` .. ``high``, ``log`` for a log-uniform draw) or ``choices`` (numbers). Whether a
key is drawn as integers or floats follows its type in ``TrainConfig``, and every bound and
choice is checked against that key's own bounds, so a search space can only propose values a
run config accepts. The walk-forward's seeds (``training.seed``) and runtime keys are not
tunable. Choices are numbers only, so that the Dagster config mirror of the run config
(``tt_platform.config.dagster``, plain types, no unions) can show them.

In YAML (``evaluation.tuning``)::

    search_space:
      - {key: learning_rate, low: 1.0e-5, high: 1.0e-3, log: true}
      - {key: n_steps, choices: [64, 128, 256, 512]}
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

from tt_platform.config.strict import StrictModel
from tt_platform.config.training import TrainConfig

# never sampled: the seed is the walk-forward's (tuning it would pick a lucky seed), the rest
# change how training runs, not what it learns
UNTUNABLE_KEYS = ("seed", "device", "torch_threads", "checkpoint_every", "eval_episode")


def _field_value(key: str, value: Any) -> Any:
    """``value`` validated against ``TrainConfig.<key>``'s type and bounds (ValueError if not)."""
    info = TrainConfig.model_fields[key]
    annotation = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise ValueError(f"training.{key} cannot be {value!r}: {reason}") from None


def _is_integer_field(key: str) -> bool:
    return TrainConfig.model_fields[key].annotation is int


def _is_number_field(key: str) -> bool:
    return TrainConfig.model_fields[key].annotation in (int, float)


class SearchParam(StrictModel):
    """One tuned ``training`` key: a range (``low``, ``high``, ``log``) or ``choices``."""

    key: str = Field(description="a key of the training section (learning_rate, gamma, ...)")
    low: float | None = Field(None, description="smallest value of a range")
    high: float | None = Field(None, description="largest value of a range")
    log: bool = Field(False, description="draw the range log-uniformly (low > 0)")
    choices: list[float] | None = Field(None, min_length=1, description="the values to choose from")

    @model_validator(mode="before")
    @classmethod
    def _from_dagster_config(cls, data: Any) -> Any:
        # the Dagster mirror of the run config hands list items over as its own config objects
        if isinstance(data, BaseModel) and not isinstance(data, SearchParam):
            return data.model_dump()
        return data

    @model_validator(mode="after")
    def _check(self) -> SearchParam:
        key = self.key
        if key not in TrainConfig.model_fields:
            raise ValueError(f"{key!r} is not a key of the training section")
        if key in UNTUNABLE_KEYS:
            raise ValueError(f"training.{key} cannot be tuned ({', '.join(UNTUNABLE_KEYS)} are fixed)")
        ranged = self.low is not None or self.high is not None
        if (self.choices is None) == (not ranged) or (ranged and (self.low is None or self.high is None)):
            raise ValueError(f"training.{key}: give either low and high, or choices")
        if not _is_number_field(key):
            raise ValueError(f"training.{key} is not a number: only numeric keys can be tuned")
        if self.choices is not None:
            if self.log:
                raise ValueError(f"training.{key}: log applies to a range, not to choices")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"training.{key}: choices repeat a value")
            if _is_integer_field(key) and not all(float(c).is_integer() for c in self.choices):
                raise ValueError(f"training.{key} is an integer: choices must be whole numbers")
            for choice in self.typed_choices():
                _field_value(key, choice)
            return self
        if not self.low < self.high:
            raise ValueError(f"training.{key}: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"training.{key}: a log range needs low > 0, got {self.low}")
        if _is_integer_field(key) and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError(f"training.{key} is an integer: low and high must be whole numbers")
        _field_value(key, int(self.low) if _is_integer_field(key) else self.low)
        _field_value(key, int(self.high) if _is_integer_field(key) else self.high)
        return self

    def typed_choices(self) -> list[int | float]:
        """``choices`` as the key's type (int keys: ints)."""
        cast = int if _is_integer_field(self.key) else float
        return [cast(choice) for choice in self.choices or []]

    def payload(self) -> dict[str, Any]:
        values = self.model_dump(mode="json", exclude_none=True)
        if self.choices is not None:
            values["choices"] = self.typed_choices()
        return values


def default_search_space() -> list[SearchParam]:
    """PPO's usual ranges: learning rate, discount, entropy bonus, rollout and minibatch size."""
    return [
        SearchParam(key="learning_rate", low=1e-5, high=1e-3, log=True),
        SearchParam(key="gamma", low=0.9, high=0.999),
        SearchParam(key="ent_coef", low=1e-5, high=0.05, log=True),
        SearchParam(key="n_steps", choices=[64, 128, 256, 512]),
        SearchParam(key="batch_size", choices=[32, 64, 128, 256]),
    ]


def _check_distinct(params: list[SearchParam]) -> None:
    keys = [p.key for p in params]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"training.{repeated[0]} appears more than once in the search space")


class SearchSpace(StrictModel):
    """The tuned ``training`` keys, each at most once, sampled in the order given."""

    params: list[SearchParam] = Field(default_factory=default_search_space, min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> SearchSpace:
        _check_distinct(self.params)
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.params)

    def payload(self) -> list[dict[str, Any]]:
        """JSON values, for the study's identity."""
        return [p.payload() for p in self.params]

    def sample(self, trial: Any, training: TrainConfig) -> dict[str, Any]:
        """One value per key from ``trial`` (an Optuna trial), then PPO's rule enforced:
        ``n_steps x n_envs >= batch_size``. When a draw breaks it, ``batch_size`` is lowered to
        the largest of its choices that fits (or to ``n_steps x n_envs`` when it is not tuned by
        choices); the returned values are the ones trained with."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.choices is not None:
                values[param.key] = trial.suggest_categorical(param.key, param.typed_choices())
            elif _is_integer_field(param.key):
                values[param.key] = trial.suggest_int(param.key, int(param.low), int(param.high), log=param.log)
            else:
                values[param.key] = trial.suggest_float(param.key, param.low, param.high, log=param.log)
        return self._fit_ppo_batch(values, training)

    def _fit_ppo_batch(self, values: dict[str, Any], training: TrainConfig) -> dict[str, Any]:
        def current(key: str) -> Any:
            return values.get(key, getattr(training, key))

        if current("algo") != "ppo":
            return values
        rollout = int(current("n_steps")) * int(current("n_envs"))
        if int(current("batch_size")) <= rollout:
            return values
        batch = next((p for p in self.params if p.key == "batch_size"), None)
        fitting = [c for c in batch.typed_choices() if 2 <= c <= rollout] if batch else []
        values = dict(values)
        values["batch_size"] = max(fitting) if fitting else rollout
        return values


class TuningConfig(StrictModel):
    """``tt tune``: the search space and how a trial's validation folds are scored."""

    search_space: list[SearchParam] = Field(
        default_factory=default_search_space, min_length=1,
        description="training keys sampled per trial, each a range (low, high, log) or choices")
    undefined_sharpe: float = Field(
        -10.0, le=0.0, description="validation Sharpe scored for a fold whose Sharpe is undefined "
        "(equity never moved, e.g. a policy that stays in cash)")
    prune: bool = Field(
        True, description="stop a trial early when its running validation Sharpe after a fold is "
        "below the median of earlier trials at that fold")

    @model_validator(mode="after")
    def _distinct(self) -> TuningConfig:
        _check_distinct(self.search_space)
        return self

    @property
    def space(self) -> SearchSpace:
        return SearchSpace(params=self.search_space)
