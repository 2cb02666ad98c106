"""What a run records about the machine and software that produced it."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import torch

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


def device_name(device: torch.device) -> str:
    """A human-readable device name (GPU model, or the CPU and its thread count)."""
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
    }
