"""CPU threads on shared machines: idle OpenMP threads sleep, and torch never runs more threads than
the CPUs this process may use (more threads than CPUs made a FastGAN step 10-50x slower here).

Importing this module does not import torch: :func:`limit_threads` must set ``OMP_WAIT_POLICY``
before torch loads its OpenMP runtime, which reads it once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2 CPU quota: "<quota> <period>" or "max <period>"


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (``taskset``, SLURM cpusets), capped by a
    cgroup CPU quota (``docker --cpus``), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API on this platform
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, quota) if quota else cpus)


def _cgroup_quota() -> int | None:
    """Whole CPUs of the cgroup v2 quota (rounded down), None without one."""
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        return None if quota == "max" else int(quota) // int(period)
    except (OSError, ValueError):
        return None


def limit_threads(cpus: int | None = None) -> int:
    """``OMP_WAIT_POLICY=PASSIVE`` and ``OPENBLAS_NUM_THREADS=1`` unless the user set them, then torch's
    intra-op threads capped at :func:`usable_cpus` (and at ``cpus``, e.g. a SLURM task's); returns the
    thread count.

    Before torch is imported (the CLI entry calls it first), the cap goes into ``OMP_NUM_THREADS``
    (a user's smaller value is kept), which torch reads when it starts, so a command that never needs
    torch does not pay for importing it; once torch is loaded, ``torch.set_num_threads`` applies it.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # numpy's OpenBLAS (KID's 100 small kernel products, FID's SVD) on one thread: its own threads
    # spin beside torch's; on 2 busy cores KID200 took 10-18 s with 2 threads, 0.8 s with 1
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    cap = min(usable_cpus(), cpus or usable_cpus())
    torch = sys.modules.get("torch")
    if torch is None:
        given = os.environ.get("OMP_NUM_THREADS", "")
        threads = min(int(given), cap) if given.isdigit() and int(given) > 0 else cap
        os.environ["OMP_NUM_THREADS"] = str(threads)
        return threads
    threads = min(torch.get_num_threads(), cap)
    torch.set_num_threads(threads)
    return threads
