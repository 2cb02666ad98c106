"""The real command line in a subprocess, many times over, fast: a *zygote* process imports the harness
once and forks one ``run_bench.py`` per request (a fresh interpreter per command would spend most of
each case importing torch). The child is ``run_bench.py`` executed as ``python run_bench.py ARGV``
executes it (``runpy`` as ``__main__``), with its own working folder, environment additions and
stdout/stderr files at the descriptor level, so warnings and tracebacks land where a user sees them.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_BENCH = ROOT / "run_bench.py"
ENV = os.environ | {
    "PYTHONPATH": str(ROOT),
    "OMP_NUM_THREADS": "1",  # no thread pools before the zygote forks
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}

ZYGOTE = f"""
import json, os, runpy, sys, traceback
import torch, pandas, matplotlib
import bench.cli, bench.launchers.local, bench.launchers.submit, bench.metrics, bench.report, bench.tools.calibrate
import bench.tools.generate, bench.tools.official, bench.tools.rescore, bench.data.prepare, models
{{preamble}}

while line := sys.stdin.readline():
    req = json.loads(line)
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
        continue
    os.chdir(req["cwd"])
    os.environ.update(req["env"])
    for fd, name in ((1, req["stdout"]), (2, req["stderr"])):
        os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    sys.argv = [{str(RUN_BENCH)!r}, *req["argv"]]
    code = 1
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
"""


@dataclass(frozen=True)
class Result:
    """A finished command: its exit code (-9 when killed at the time limit) and what it printed."""

    code: int
    stdout: str
    stderr: str


class Zygote:
    """A process that imported the harness and forks one ``run_bench.py`` per :meth:`run`."""

    def __init__(self, logs: Path, preamble: str = "") -> None:
        """``preamble``: Python run once before the first fork (e.g. registering a test-only protocol)."""
        self.logs = logs
        self.count = 0
        self._buffer = b""
        self.startup = logs / "zygote.err"
        code = ZYGOTE.replace("{preamble}", preamble)
        with open(self.startup, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                env=ENV, cwd=ROOT, bufsize=0,
            )  # fmt: skip

    def run(self, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        """``python run_bench.py ARGV`` in ``cwd``; killed after ``timeout`` seconds (a hang is a failure)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.count += 1
        out, err = (self.logs / f"{self.count}.{s}" for s in ("out", "err"))
        req = {"argv": argv, "cwd": str(cwd), "env": env or {}, "stdout": str(out), "stderr": str(err)}
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        pid = int(self._line(30))
        try:
            code = int(self._line(timeout))
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            code = int(self._line(30))
        return Result(code, out.read_text(errors="replace"), err.read_text(errors="replace"))

    def _line(self, timeout: float) -> str:
        """The zygote's next output line (unbuffered: select sees exactly what is unread)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            if not select.select([fd], [], [], timeout)[0]:
                raise TimeoutError
            chunk = os.read(fd, 4096)
            assert chunk, f"the zygote died: {self.startup.read_text()}"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
