"""Declarative feature sets: what to compute, hashed so every stored value names its recipe.

``FeatureSet.hash`` is the sha256 (first 16 hex digits) of a canonical JSON of the set: its
name, version, normalization window, every feature's name, function and *effective* parameters
(defaults filled in), and ``FEATURE_LIBRARY_VERSION``. Any change to any of them gives a new hash,
so cached or stored features from another recipe are never mistaken for the current one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tt_platform.features.registry import FeatureConfigError, FeatureFunction, get_function

# Bump when a computation changes in a way that changes values for the same spec.
FEATURE_LIBRARY_VERSION = "1"
HASH_LENGTH = 16


class FeatureSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    function: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_function(self) -> FeatureSpec:
        self.feature_function.resolve_params(self.params, self.name)
        return self

    @property
    def feature_function(self) -> FeatureFunction:
        return get_function(self.function, self.name)

    @property
    def resolved_params(self) -> dict[str, Any]:
        return self.feature_function.resolve_params(self.params, self.name)

    @property
    def warmup_bars(self) -> int:
        """Index, in a symbol's own bars, of its first valid raw value."""
        return int(self.feature_function.warmup(**self.resolved_params))

    @property
    def scaling(self) -> str:
        return self.feature_function.scaling


class FeatureSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    features: tuple[FeatureSpec, ...]
    normalize_window: int = Field(default=60, ge=2)

    @field_validator("features")
    @classmethod
    def _unique_names(cls, features: tuple[FeatureSpec, ...]) -> tuple[FeatureSpec, ...]:
        if not features:
            raise ValueError("a feature set needs at least one feature")
        seen: set[str] = set()
        for spec in features:
            if spec.name in seen:
                raise ValueError(f"duplicate feature name {spec.name!r}")
            seen.add(spec.name)
        return features

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def canonical(self) -> dict[str, Any]:
        """The hashed content: everything that changes the computed values."""
        return {
            "library_version": FEATURE_LIBRARY_VERSION,
            "name": self.name,
            "version": self.version,
            "normalize_window": self.normalize_window,
            "features": [
                {"name": f.name, "function": f.function, "params": f.resolved_params}
                for f in self.features
            ],
        }

    @property
    def hash(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]

    def feature_warmup(self, spec: FeatureSpec) -> int:
        """Index (in a symbol's bars) of the first valid *normalized* value of one feature."""
        extra = self.normalize_window - 1 if spec.scaling == "zscore" else 0
        return spec.warmup_bars + extra

    @property
    def warmup_bars(self) -> int:
        """Bars of a symbol's history needed before its first fully valid feature row.

        An incremental recompute that loads this many bars before the first row it needs gets the
        same mask (and, within the EMA settling tolerance, the same values) as a full recompute.
        """
        return max(self.feature_warmup(spec) for spec in self.features)

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "feature set") -> FeatureSet:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise FeatureConfigError(f"{origin}: invalid feature set:\n{exc}") from exc

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, origin: str = "feature set YAML") -> FeatureSet:
        from tt_platform.config.run_config import DuplicateKeyError, UniqueKeyLoader

        try:
            # a key given twice is refused, as in run configs: silently keeping the last hides typos
            data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except DuplicateKeyError as exc:
            raise FeatureConfigError(f"{origin}: {exc}") from None
        except yaml.YAMLError as exc:
            raise FeatureConfigError(f"{origin}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise FeatureConfigError(f"{origin}: expected a mapping at the top level, got {type(data).__name__}")
        return cls.from_dict(data, origin)

    @classmethod
    def from_yaml_file(cls, path: str | Path) -> FeatureSet:
        path = Path(path)
        return cls.from_yaml(path.read_text(encoding="utf-8"), origin=str(path))
