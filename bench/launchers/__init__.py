"""Launchers: where a suite's cells run, behind one typed interface (:class:`Launcher`).

- ``local``: one after another in this process (:mod:`bench.launchers.local`);
- ``submitit-local``: submitit subprocesses on this machine, and ``slurm``: SLURM job arrays,
  requeued on preemption and timeout (:mod:`bench.launchers.submit`);
- a device pool (``--devices 0,1``): one worker process per GPU on the same suite, the run locks
  spreading the cells among them (:mod:`bench.launchers.pool`).

Every path runs the same pre-run checks first (:func:`bench.launchers.checks.preflight`); the
interface is :mod:`bench.launchers.base`.
"""
