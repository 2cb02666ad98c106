"""Metrics: detector registry, FID / KID / precision-recall, named evaluation protocols.

``evaluate(model, dataset, ["fid5k_full_clean"], detector="inception-v3", device=..., cache_dir=...)``
returns one row per metric with every :class:`EvalSpec` field as a column. FID/KID use ``detector``,
precision/recall ``pr_detector`` (default ``vgg16-fc2``, its standard one); ``detector_for`` says which.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module defining it; imported on first use (the detectors, features and scores modules
# load torchvision and clean-fid: seconds a command that only checks a name does not need)
_EXPORTS = {
    **dict.fromkeys(
        ("MODES", "Detector", "DetectorCache", "check_detector", "get_detector", "list_detectors",
         "register_detector"), "bench.metrics.detectors",
    ),
    **dict.fromkeys(
        ("PR_DETECTOR", "PROTOCOLS", "STANDARD_DETECTORS", "EvalProtocol", "EvalSpec", "check_protocol",
         "detector_for", "evaluate", "generated_count", "list_protocols", "register_protocol"),
        "bench.metrics.protocols",
    ),
    **dict.fromkeys(
        ("feature_stats", "fid_from_features", "kernel_distance", "kid_from_features", "precision_recall"),
        "bench.metrics.scores",
    ),
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """``from bench.metrics import evaluate`` imports :mod:`bench.metrics.protocols` then."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
