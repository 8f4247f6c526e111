"""Catalogue of feature functions a ``FeatureSpec`` can name.

Each entry knows how to compute one feature on a ``FeatureContext`` (see ``context.py``), how
many bars of a symbol's own history it needs before its first valid value (``warmup``), which
parameters it takes (with defaults, so the feature-set hash covers the effective values), and
whether the normalizer z-scores it or passes it through (flags, labels and ranks are already on
a bounded scale and a rolling z-score would turn a rare flag into an outlier).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Scaling = Literal["zscore", "none"]


class FeatureConfigError(ValueError):
    """A feature spec names an unknown function or gives it parameters it does not take."""


@dataclass(frozen=True)
class FeatureFunction:
    name: str
    compute: Callable[..., np.ndarray]
    warmup: Callable[..., int]
    defaults: Mapping[str, Any]
    scaling: Scaling
    description: str

    def resolve_params(self, params: Mapping[str, Any], feature_name: str = "?") -> dict[str, Any]:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise FeatureConfigError(
                f"feature {feature_name!r}: function {self.name!r} takes no parameter(s) {unknown}; "
                f"accepted: {sorted(self.defaults)}"
            )
        resolved = dict(self.defaults)
        resolved.update(params)
        for key, value in resolved.items():
            _check_param(feature_name, self.name, key, value, self.defaults[key])
            if isinstance(self.defaults[key], float):
                resolved[key] = float(value)  # 25 and 25.0 are the same recipe (and hash)
        return resolved


def _check_param(feature_name: str, function: str, key: str, value: Any, default: Any) -> None:
    # Every integer parameter is a window, period or lag (>= 1); floats are thresholds.
    where = f"feature {feature_name!r} ({function}): parameter {key!r}"
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise FeatureConfigError(f"{where}: unsupported default {default!r}")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FeatureConfigError(f"{where} must be an integer >= 1, got {value!r}")
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FeatureConfigError(f"{where} must be a finite number, got {value!r}")


REGISTRY: dict[str, FeatureFunction] = {}


def feature_function(
    name: str, *, warmup: Callable[..., int], scaling: Scaling = "zscore"
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Register ``compute(ctx, **params) -> [T, N] float64`` under ``name``.

    The keyword defaults of ``compute`` are the parameter defaults; ``warmup(**params)`` returns
    the index (in the symbol's own bars) of the first bar whose value is trustworthy.
    """

    def register(compute: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        if name in REGISTRY:
            raise FeatureConfigError(f"feature function {name!r} registered twice")
        signature = inspect.signature(compute)
        defaults = {
            p.name: p.default
            for p in list(signature.parameters.values())[1:]
            if p.default is not inspect.Parameter.empty
        }
        REGISTRY[name] = FeatureFunction(
            name=name,
            compute=compute,
            warmup=warmup,
            defaults=defaults,
            scaling=scaling,
            description=(inspect.getdoc(compute) or "").split("\n")[0],
        )
        return compute

    return register


def get_function(name: str, feature_name: str = "?") -> FeatureFunction:
    _load_builtin_functions()
    try:
        return REGISTRY[name]
    except KeyError:
        raise FeatureConfigError(
            f"feature {feature_name!r}: unknown function {name!r}; known: {sorted(REGISTRY)}"
        ) from None


def available_functions() -> dict[str, FeatureFunction]:
    _load_builtin_functions()
    return dict(REGISTRY)


def _load_builtin_functions() -> None:
    # Imported for their registration side effect; deferred so spec.py can import this module
    # without a cycle.
    from tt_platform.features import cross_section, price, regime, volume  # noqa: F401
