"""Device profiles match the SKU (bench/plan/devices.toml): a GPU's name gives its form factor, its total
memory its size, so an A100 40 GB never takes the 80 GB card's bandwidth, an H100 PCIe or NVL never
the SXM card's figures; a run records the profile its device matched and `status` shows it."""

from __future__ import annotations

import pytest
import torch

from bench.plan.devices import get_profile, load_profiles, match_profile
from bench.results.envinfo import device_info, device_summary, matched_profile

# Per profile: (the name torch.cuda.get_device_properties gives, its total_memory in GiB) of real cards;
# CPU profiles: the /proc/cpuinfo description (bench.results.envinfo.cpu_description).
DEVICES: dict[str, list[tuple[str, float | None]]] = {
    "rtx-2080-ti": [("NVIDIA GeForce RTX 2080 Ti", 10.75)],
    "rtx-titan": [("NVIDIA TITAN RTX", 23.65)],
    "v100-sxm2": [("Tesla V100-SXM2-16GB", 15.77), ("Tesla V100-SXM2-32GB", 31.74)],
    "v100-pcie": [("Tesla V100-PCIE-16GB", 15.77), ("Tesla V100-PCIE-32GB", 31.74)],
    "v100s-pcie": [("Tesla V100S-PCIE-32GB", 31.74)],
    "a100-sxm4-40gb": [("NVIDIA A100-SXM4-40GB", 39.39)],
    "a100-sxm4-80gb": [("NVIDIA A100-SXM4-80GB", 79.15)],
    "a100-pcie-40gb": [("NVIDIA A100-PCIE-40GB", 39.39)],
    "a100-pcie-80gb": [("NVIDIA A100 80GB PCIe", 79.15)],
    "h100-sxm": [("NVIDIA H100 80GB HBM3", 79.11)],
    "h100-pcie": [("NVIDIA H100 PCIe", 79.11)],
    "h100-nvl": [("NVIDIA H100 NVL", 93.1)],
    "h200-sxm": [("NVIDIA H200", 139.8)],
    "h200-nvl": [("NVIDIA H200 NVL", 139.8)],
    "l4": [("NVIDIA L4", 22.03)],
    "rtx-4090": [("NVIDIA GeForce RTX 4090", 23.65)],
    "cpu-epyc-zen4": [("AMD EPYC 9R14 96-Core Processor family 25 model 17", None)],
}
NO_PROFILE = [
    ("NVIDIA L40S", 44.4),  # no profile
    ("NVIDIA A100-SXM4-40GB", 4.75),  # a MIG slice: not the whole card's figures
    ("NVIDIA A100-SXM4-80GB", None),  # memory unknown: 40 or 80 GB, so none
    ("NVIDIA GH200 480GB", 94.5),  # Grace Hopper is not an H200
    ("NVIDIA GeForce RTX 4090 D", 23.65),  # the cut-down 4090
]


def test_every_profile_has_a_matching_case() -> None:
    assert set(DEVICES) == set(load_profiles())


@pytest.mark.parametrize("profile", sorted(DEVICES))
def test_profile_matches_its_sku_only(profile: str) -> None:
    kind = load_profiles()[profile].kind
    for name, gib in DEVICES[profile]:
        memory = None if gib is None else int(gib * 2**30)
        found = match_profile(name, kind, memory)
        assert found is not None and found.name == profile, (name, gib, found)


@pytest.mark.parametrize(("name", "gib"), NO_PROFILE)
def test_unknown_or_ambiguous_devices_match_no_profile(name: str, gib: float | None) -> None:
    assert match_profile(name, "cuda", None if gib is None else int(gib * 2**30)) is None


def test_skus_carry_their_own_figures_and_old_names_stay_aliases() -> None:
    p = load_profiles()
    assert (p["a100-sxm4-40gb"].bandwidth, p["a100-sxm4-80gb"].bandwidth, p["a100-pcie-80gb"].bandwidth) == (
        1555e9, 2039e9, 1935e9)  # fmt: skip
    assert (p["h100-sxm"].peaks["fp32"], p["h100-pcie"].peaks["fp32"], p["h100-nvl"].peaks["fp32"]) == (
        67e12, 51e12, 60e12)  # fmt: skip
    assert (p["h100-sxm"].bandwidth, p["h100-pcie"].bandwidth, p["h100-nvl"].bandwidth) == (3350e9, 2000e9, 3900e9)
    aliases = {old: get_profile(old).name for old in ("a100", "h100", "h200", "v100")}
    assert aliases == {"a100": "a100-sxm4-80gb", "h100": "h100-sxm", "h200": "h200-sxm", "v100": "v100-sxm2"}


def test_runs_record_and_status_shows_the_matched_profile() -> None:
    info = device_info(torch.device("cpu"))
    here = matched_profile(torch.device("cpu"))
    assert info["profile"] == (here.name if here else None)
    assert device_summary(info).endswith(f"profile {info['profile'] or 'none'})")
    gpu = {"type": "cuda", "index": 0, "name": "NVIDIA H200", "count": 1, "driver": "580", "cuda": "13.0"}
    assert device_summary(gpu | {"profile": "h200-sxm"}) == (
        "cuda:0 NVIDIA H200 (1 of 1; driver 580, CUDA 13.0; profile h200-sxm)"
    )
    assert device_summary(gpu) == "cuda:0 NVIDIA H200 (1 of 1; driver 580, CUDA 13.0)"  # a state file from before
