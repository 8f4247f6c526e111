"""Feature library: bars -> look-ahead-free, normalized, hashed feature matrices."""

from tt_platform.features.compute import compute_features
from tt_platform.features.matrix import FeatureMatrix
from tt_platform.features.sets import basic_feature_set, full_feature_set
from tt_platform.features.spec import FeatureSet, FeatureSpec

__all__ = [
    "FeatureMatrix",
    "FeatureSet",
    "FeatureSpec",
    "basic_feature_set",
    "compute_features",
    "full_feature_set",
]
