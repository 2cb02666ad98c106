"""A training step run as one CUDA graph: a few eager warm-up steps, one capture, then replays.

A family opts in (``cuda_graphs``) by handing :class:`StepGraph` a *body*: a function of device
tensors only (``body(**inputs) -> {name: 0-dim loss}``) that does the whole step (forward,
backward, optimizer steps, EMA) without a host synchronisation, without random numbers drawn on
the host and without Python branches on tensor values. On CUDA the first ``warmup`` calls run
the body eagerly on a side stream (cuDNN autotuning, optimizer state, lazily built parts); the
next call captures it into a ``torch.cuda.CUDAGraph`` on static copies of the inputs, and every
call from then on copies its inputs into those and replays the graph: the step's kernels launch
back to back, with no Python between them. The returned losses are the graph's static outputs,
overwritten by the next replay (read or copy them before the next step).

Elsewhere (the CPU) there is no graph: every call runs the body eagerly on the inputs, the
CPU-equivalent of a replay; the call that would capture runs under :class:`HostSyncs` and raises
:class:`GraphCaptureError` when the body would synchronise, which capture would refuse.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

Body = Callable[..., dict[str, Tensor]]
WARMUP_STEPS = 3  # eager steps before the capture (PyTorch's whole-network capture example uses 3)
# aten ops whose result the host must wait for (a device-to-host read), or whose output size
# depends on tensor values: each is a host synchronisation on CUDA and breaks a graph capture
SYNC_OPS = frozenset({
    "_local_scalar_dense", "is_nonzero", "item", "nonzero", "masked_select", "equal", "allclose", "unique_dim",
    "_unique", "_unique2", "unique_consecutive", "repeat_interleave", "bincount", "histc", "multinomial",
})  # fmt: skip
_CAPTURABLE_WARNING = "This instance was constructed with capturable=True"


class GraphCaptureError(RuntimeError):
    """The step body does something a CUDA graph cannot hold (a host synchronisation)."""


class HostSyncs(TorchDispatchMode):
    """Records the aten ops that would synchronise the host with a CUDA device (:data:`SYNC_OPS`,
    boolean-mask indexing, copies to the CPU), on whatever device they run: on the CPU it tells
    what a CUDA graph capture of the same code would refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = func._overloadpacket.__name__
        if name in SYNC_OPS or _bool_index(name, args) or _to_host(name, args, kwargs):
            self.found.append(name)
        return func(*args, **kwargs)


def _bool_index(name: str, args: tuple) -> bool:
    """``x[mask]`` with a boolean mask: its output size needs the mask's values."""
    if name not in ("index", "index_put", "index_put_") or len(args) < 2:
        return False
    return any(isinstance(i, Tensor) and i.dtype == torch.bool for i in args[1] or ())


def _to_host(name: str, args: tuple, kwargs: dict) -> bool:
    """A copy from an accelerator to the CPU (``.cpu()``, ``.to('cpu')``, ``cpu_tensor.copy_(dev)``)."""
    if name == "_to_copy" and args and isinstance(args[0], Tensor):
        return args[0].device.type != "cpu" and torch.device(kwargs.get("device") or args[0].device).type == "cpu"
    if name == "copy_" and len(args) >= 2 and all(isinstance(a, Tensor) for a in args[:2]):
        return args[0].device.type == "cpu" and args[1].device.type != "cpu"
    return False


def host_syncs(fn: Callable[[], Any]) -> list[str]:
    """The host-synchronising ops ``fn()`` runs (see :class:`HostSyncs`), in order."""
    with HostSyncs() as mode:
        fn()
    return mode.found


class StepGraph:
    """``body`` run as a CUDA graph after ``warmup`` eager steps (see the module docstring);
    ``warmup=None``: never captured (every call an eager warm-up step), the replays' eager twin."""

    def __init__(self, body: Body, warmup: int | None = WARMUP_STEPS) -> None:
        self.body, self.warmup = body, math.inf if warmup is None else warmup
        self.reset()

    def reset(self) -> None:
        """Forget the capture: warm up and capture again (needed after an optimizer's state tensors
        were replaced, e.g. by ``load_state_dict``; weights loaded in place need nothing)."""
        self.calls = 0
        self.graph: Any = None
        self.static_in: dict[str, Tensor] = {}
        self.static_out: dict[str, Tensor] = {}

    @property
    def captured(self) -> bool:
        """Whether the step now replays a graph (or, off CUDA, whether the capture call has run)."""
        return self.calls > self.warmup

    def __call__(self, **inputs: Tensor) -> dict[str, Tensor]:
        """One training step on ``inputs`` (device tensors of fixed shapes)."""
        device = next(iter(inputs.values())).device
        self.calls += 1
        if device.type != "cuda":
            return self.body(**inputs) if self.calls <= self.warmup else self._eager(inputs)
        with torch.cuda.device(device):  # streams and capture on the inputs' GPU, not the current one
            if self.calls <= self.warmup:
                return _side_stream(self.body, inputs)
            if self.graph is None:
                self._capture(inputs)
            for name, value in inputs.items():
                self.static_in[name].copy_(value, non_blocking=True)
            self.graph.replay()
        return dict(self.static_out)

    def _eager(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Off CUDA: the body itself; its first run after the warm-up is checked as a capture would be."""
        if self.calls > self.warmup + 1:
            return self.body(**inputs)
        with HostSyncs() as mode:
            out = self.body(**inputs)
        if mode.found:
            raise GraphCaptureError(f"the step synchronises the host ({', '.join(mode.found)}); it cannot be captured")
        return out

    def _capture(self, inputs: dict[str, Tensor]) -> None:
        """Record the body on static copies of ``inputs`` (nothing runs during a capture)."""
        self.static_in = {name: value.clone() for name, value in inputs.items()}
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        dtype, on = torch.get_autocast_dtype("cuda"), torch.is_autocast_enabled("cuda")
        # autocast's cast cache must stay off while capturing (PyTorch's CUDA graph notes)
        with torch.cuda.graph(self.graph), torch.autocast("cuda", dtype=dtype, enabled=on, cache_enabled=False):
            self.static_out = self.body(**self.static_in)


def _side_stream(body: Body, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """An eager warm-up step on a side stream, ordered after and before the current stream's work."""
    current, side = torch.cuda.current_stream(), torch.cuda.Stream()
    side.wait_stream(current)
    with torch.cuda.stream(side), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CAPTURABLE_WARNING)  # capturable optimizers, not yet captured
        out = body(**inputs)
    current.wait_stream(side)
    return out
