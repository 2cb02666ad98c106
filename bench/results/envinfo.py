"""What a run records about the machine and software that produced it."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from bench.plan.devices import DeviceProfile, match_profile

_PACKAGES = ("torch", "torchvision", "numpy", "clean-fid", "lpips", "pandas", "scipy", "pillow", "submitit")


def git_sha(repo: Path | None = None) -> str:
    """The project's git commit (with '-dirty' when the tree has changes), or 'unknown'."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that affect results."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def cpu_model() -> str:
    """The CPU's model name (Linux), else the machine type."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


@functools.cache
def nvidia_driver() -> str | None:
    """The NVIDIA driver's version as nvidia-smi reports it; None where nvidia-smi is missing or fails."""
    cmd = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    versions = done.stdout.split()
    return versions[0] if done.returncode == 0 and versions else None


def cpu_description() -> str:
    """'<model name> family <F> model <M>' from /proc/cpuinfo (what CPU profiles match)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown CPU"
    name = fields.get("model name", "unknown CPU")
    return f"{name} family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"


def device_description(device: torch.device) -> str:
    """The name a profile's ``match`` pattern is searched in (the GPU's name, or :func:`cpu_description`)."""
    import torch

    return torch.cuda.get_device_properties(device).name if device.type == "cuda" else cpu_description()


def matched_profile(device: torch.device) -> DeviceProfile | None:
    """The device profile (``bench/plan/devices.toml``) of ``device``'s SKU: its name and, for a GPU, its
    total memory (an A100 40 GB and 80 GB, an H100 SXM, PCIe and NVL differ); None when none or several match."""
    import torch

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return match_profile(props.name, "cuda", props.total_memory)
    return match_profile(cpu_description(), device.type)


def device_info(device: torch.device) -> dict[str, Any]:
    """The device a run trains on: type, name, how many of its kind are visible, driver and CUDA versions,
    and the device profile its SKU matched (None: none)."""
    import torch

    profile = matched_profile(device)
    if device.type != "cuda":
        name = cpu_model() if device.type == "cpu" else str(device)
        return {
            "type": device.type, "name": name, "count": 1, "threads": torch.get_num_threads(),
            "profile": profile.name if profile else None,
        }  # fmt: skip
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "type": "cuda", "index": index, "name": props.name, "count": torch.cuda.device_count(),
        "profile": profile.name if profile else None,
        "memory_gib": round(props.total_memory / 2**30, 1), "capability": f"{props.major}.{props.minor}",
        "driver": nvidia_driver(), "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }  # fmt: skip


def device_summary(info: dict[str, Any]) -> str:
    """One line: 'cuda:0 NVIDIA H200 (1 of 8; driver 580.1, CUDA 13.0; profile h200-sxm)' or 'cpu AMD
    EPYC 7B13 (2 threads; profile cpu-epyc-zen4)'; 'profile none' when no profile matched."""
    profile = f"profile {info['profile'] or 'none'}" if "profile" in info else ""  # older state files: absent
    if info.get("type") != "cuda":
        detail = "; ".join(filter(None, [f"{info.get('threads', '?')} threads", profile]))
        return f"{info.get('type', '?')} {info.get('name', '?')} ({detail})"
    versions = f"driver {info.get('driver') or '?'}, CUDA {info.get('cuda') or '?'}"
    detail = "; ".join(filter(None, [f"1 of {info.get('count', '?')}", versions, profile]))
    return f"cuda:{info.get('index', '?')} {info.get('name', '?')} ({detail})"


def device_type(env: dict[str, Any]) -> str:
    """What tells devices apart in a report: the GPU's name for a CUDA run, else the device type
    ('cpu'); from a spec file's ``environment`` (older files have only ``device``/``device_name``)."""
    info = env.get("device_info")
    if isinstance(info, dict):
        return str(info.get("name")) if info.get("type") == "cuda" else str(info.get("type"))
    device = str(env.get("device", "unknown"))
    return str(env.get("device_name", device)) if device.startswith("cuda") else device.split(":")[0]


def cuda_absence() -> str:
    """What was found instead of a CUDA device, in a few words (for one-line refusals)."""
    import torch

    if torch.version.cuda is None:
        why = f"torch {torch.__version__} has no CUDA"
    else:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        why = f"torch {torch.__version__} sees {torch.cuda.device_count()}; "
        why += "CUDA_VISIBLE_DEVICES unset" if visible is None else f"CUDA_VISIBLE_DEVICES={visible!r}"
    return f"no CUDA device on {socket.gethostname()} ({why})"


def device_name(device: torch.device) -> str:
    """A human-readable device name (GPU model, or the CPU and its thread count)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu:{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def environment(device: torch.device) -> dict[str, Any]:
    """Git sha, package versions, python, host and device."""
    return {
        "git_sha": git_sha(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "device": str(device),
        "device_name": device_name(device),
        "device_info": device_info(device),
    }
