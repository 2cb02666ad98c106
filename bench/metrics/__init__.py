"""Metrics: detector registry, FID / KID / precision-recall, named evaluation protocols.

``evaluate(model, dataset, ["fid5k_full"], detector="inception-v3", device=..., cache_dir=...)``
returns one row per metric with every :class:`EvalSpec` field as a column. FID/KID use ``detector``,
precision/recall ``pr_detector`` (default ``vgg16-fc2``, its standard one); ``detector_for`` says which.
"""

from bench.metrics.detectors import (
    MODES,
    Detector,
    DetectorCache,
    check_detector,
    get_detector,
    list_detectors,
    register_detector,
)
from bench.metrics.protocols import (
    PR_DETECTOR,
    PROTOCOLS,
    STANDARD_DETECTORS,
    EvalProtocol,
    EvalSpec,
    check_protocol,
    detector_for,
    evaluate,
    generated_count,
    list_protocols,
    register_protocol,
)
from bench.metrics.scores import (
    feature_stats,
    fid_from_features,
    frechet_distance,
    kid_from_features,
    precision_recall,
)

__all__ = [
    "MODES",
    "PROTOCOLS",
    "PR_DETECTOR",
    "STANDARD_DETECTORS",
    "Detector",
    "DetectorCache",
    "EvalProtocol",
    "EvalSpec",
    "check_detector",
    "check_protocol",
    "detector_for",
    "evaluate",
    "feature_stats",
    "fid_from_features",
    "frechet_distance",
    "generated_count",
    "get_detector",
    "kid_from_features",
    "list_detectors",
    "list_protocols",
    "precision_recall",
    "register_detector",
    "register_protocol",
]
