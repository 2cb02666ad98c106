"""The shared shape of a model family's hyperparameters: one frozen dataclass per family.

A family's config class subclasses :class:`ModelConfig`, declares each hyperparameter once as a
field with its default and a comment (unit, meaning, source), and validates itself in
``__post_init__`` with the helpers below, so every family raises the same
:class:`ModelConfigError` with a one-line message naming the key. ``hparams()`` is the JSON form
written into a run's ``spec.json``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from models.base import ModelConfigError
from models.common import check_policy


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base of the per-family config dataclasses (``FastGANConfig``, ``StyleGAN2Config``, ...)."""

    family: ClassVar[str] = "model"  # the family, named in unknown-keyword errors

    @classmethod
    def build(cls, overrides: Mapping[str, Any], fixed: Mapping[str, Any] | None = None) -> Self:
        """The config from keyword ``overrides`` on top of ``fixed`` (values a registered name sets,
        which overrides may not change). Unknown keys raise, naming close matches."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in overrides:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
                hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(known))}"
                raise ModelConfigError(f"unknown keyword {key!r} for {cls.family}; {hint}")
            if fixed and key in fixed:
                raise ModelConfigError(f"{key} is set by the registered model name; pick another name")
        return cls(**{**(fixed or {}), **overrides})

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def hparams(self) -> dict[str, Any]:
        """The fields as JSON-ready values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    # --- validation helpers for __post_init__ (one-line ModelConfigError naming the key)

    def _fail(self, key: str, why: str) -> None:
        raise ModelConfigError(f"{key} {why}, got {getattr(self, key)!r}")

    def _number(self, key: str) -> float:
        value = getattr(self, key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or isinstance(value, float)
            and not math.isfinite(value)
        ):
            self._fail(key, "must be a finite number")
        return value

    def _positive(self, *keys: str) -> None:
        for key in keys:
            if not self._number(key) > 0:
                self._fail(key, "must be > 0")

    def _positive_int(self, *keys: str) -> None:
        for key in keys:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self._fail(key, "must be an integer >= 1")

    def _non_negative(self, *keys: str) -> None:
        for key in keys:
            if not self._number(key) >= 0:
                self._fail(key, "must be >= 0")

    def _unit_interval(self, *keys: str) -> None:
        for key in keys:
            if not 0.0 <= self._number(key) <= 1.0:
                self._fail(key, "must be in [0, 1]")

    def _optional_positive(self, *keys: str) -> None:
        for key in keys:
            if getattr(self, key) is not None and not self._number(key) > 0:
                self._fail(key, "must be > 0 or None")

    def _betas(self, key: str) -> None:
        """Normalise a pair of Adam betas to a float tuple; each in [0, 1)."""
        value = getattr(self, key)
        try:
            pair = tuple(float(b) for b in value) if isinstance(value, Sequence) and not isinstance(value, str) else ()
        except (TypeError, ValueError):
            pair = ()
        if len(pair) != 2 or not all(0.0 <= b < 1.0 for b in pair):
            self._fail(key, "must be two floats in [0, 1)")
        object.__setattr__(self, key, pair)

    def _policy(self, *keys: str) -> None:
        for key in keys:
            try:
                check_policy(getattr(self, key))
            except (ValueError, AttributeError) as exc:
                raise ModelConfigError(f"{key}: {exc}") from None

    def _bool(self, *keys: str) -> None:
        for key in keys:
            if not isinstance(getattr(self, key), bool):
                self._fail(key, "must be true or false")

    def _choice(self, key: str, choices: Sequence[Any]) -> None:
        if getattr(self, key) not in choices:
            self._fail(key, f"must be one of {tuple(choices)}")
