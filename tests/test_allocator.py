"""bench.training.allocator: glibc keeps freed memory, so repeated CPU forwards stop page-faulting."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from bench.training import allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")

# page faults of a forward of an (untrained) EfficientNet-Lite0 on 2 images at 224 px: the fewest of 5 forwards
# after 2 warm-up ones (the steady state; a forward now and then still grows the heap, more so on a busy machine)
FAULTS = """
import resource, sys, torch
torch.set_num_threads(1)
from bench.training.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "1" else False
from bench.metrics.effnet import EfficientNetLite0
net, x = EfficientNetLite0().eval(), torch.randn(2, 3, 224, 224)
faults = []
with torch.no_grad():
    for _ in range(7):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net.features(x)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(applied, min(faults[2:]))
"""


def _faults(apply: bool, env: dict[str, str]) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", FAULTS, "1" if apply else "0"], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    return out[0], int(out[1])


@glibc
def test_kept_memory_is_reused_without_page_faults() -> None:
    """Default glibc maps and faults a forward's activations anew each time (about 10,000 faults here);
    with the settings, forwards after the first reuse them (none at all in the steady state)."""
    env = {k: v for k, v in os.environ.items() if not (k == "GLIBC_TUNABLES" or k.startswith("MALLOC_"))}
    applied, tuned = _faults(True, env)
    _, default = _faults(False, env)
    assert applied == "True"
    assert tuned * 5 < default, (tuned, default)


@glibc
def test_the_users_allocator_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert allocator.user_tuned() and allocator.keep_freed_memory() is False
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert allocator.keep_freed_memory() is False


def test_other_platforms_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
