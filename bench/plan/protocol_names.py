"""Former protocol names, and the one function every reader of a protocol name calls (:func:`current`).

The clean-fid protocols were first named like stylegan2-ada-pytorch's metrics (``fid50k_full``), whose
numbers there come from its own Inception resize (clean-fid's ``legacy_tensorflow``); ours resize as
clean-fid's ``clean`` mode, so the same name gave other numbers. Their names now end with the mode
(``fid5k_full_clean``) and the precision/recall names carry k as stylegan2-ada's ``pr50k3_full`` does
(``pr5k3_full_clean``; after a count without ``k``: ``pr500_k3_full_clean``). The old names are still read
everywhere a name is read: those a user typed (suite files, flags, ``bench.api``) with one note per old name
per process, those read from a results folder (spec.json, snapshots, stored result rows) silently (a note
on every ``status`` or ``report`` would tell the user nothing they can act on).

A run id hashes each protocol under the first name it had (:func:`hashed`), so the runs made before the
renaming keep their ids, folders and results.
"""

from __future__ import annotations

import difflib
import warnings

from bench.errors import Renamed

RENAMED = {  # old name -> current name
    "fid50k_full": "fid50k_full_clean",
    "fid5k_full": "fid5k_full_clean",
    "fid1k_full": "fid1k_full_clean",
    "fid500_full": "fid500_full_clean",
    "fid200_full": "fid200_full_clean",
    "fid50_full": "fid50_full_clean",
    "kid50k_full": "kid50k_full_clean",
    "kid5k_full": "kid5k_full_clean",
    "kid1k_full": "kid1k_full_clean",
    "kid500_full": "kid500_full_clean",
    "kid200_full": "kid200_full_clean",
    "pr5k_full": "pr5k3_full_clean",
    "pr1k_full": "pr1k3_full_clean",
    "pr500_full": "pr500_k3_full_clean",
}
FIRST_NAME = {new: old for old, new in RENAMED.items()}  # current name -> the name run ids hash
PR_PARTS = ("_precision", "_recall")  # a precision/recall protocol's two rows: <name>_precision, <name>_recall
_noted: set[str] = set()  # old names already noted in this process


def current(name: str, *, note: bool = True) -> str:
    """The current name of protocol ``name`` (itself unless renamed; an old name is noted once per process,
    unless ``note`` is False: a name read from a results folder, not typed)."""
    new = RENAMED.get(name)
    if new is None or not note:
        return new or name
    if name not in _noted:
        _noted.add(name)
        warnings.warn(
            f"metric {name} is now called {new} (clean-fid's clean resize, which stylegan2-ada's names of this "
            "form do not use); the old name still works",
            Renamed,
            stacklevel=2,
        )
    return new


def current_metric(metric: str, *, note: bool = True) -> str:
    """:func:`current` for a result row's metric: a protocol or ``<protocol>_precision`` / ``_recall``."""
    for part in PR_PARTS:
        if metric.endswith(part) and metric[: -len(part)] in RENAMED:
            return current(metric[: -len(part)], note=note) + part
    return current(metric, note=note)


def close_names(name: str, known: list[str]) -> list[str]:
    """Up to three of ``known`` close to the unknown ``name``: similar ones, else those it begins (``fid5k``)."""
    return difflib.get_close_matches(name, known, n=3) or [k for k in sorted(known) if name and k.startswith(name)][:3]


def hashed(name: str) -> str:
    """The name a run id hashes for protocol ``name``: the first it had (runs keep their ids)."""
    return FIRST_NAME.get(name, name)
