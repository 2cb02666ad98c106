"""``list [models|datasets|protocols|detectors|suites|devices]``: what is registered, as blocks that fit a
100-column terminal, from the registries' cached listing (:mod:`bench.plan.names`: no torch when warm).

A model's block: its name and recipe source, then one line per (resolution, keyword arguments) it runs
with in a shipped suite (G/D parameters, the suites), then any lines of detail its registry entry holds.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from bench.errors import prog_name
from bench.plan import names
from bench.plan.protocol_names import FIRST_NAME

WIDTH = 100  # columns of the terminal every line fits
SECTIONS = ("models", "datasets", "protocols", "detectors", "suites", "devices")
_INDENT = "    "


def _wrap(text: str, indent: str = _INDENT, first: str | None = None) -> list[str]:
    """``text`` wrapped to :data:`WIDTH` columns (``first``: the first line's indent)."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent if first is None else first, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=False) or [indent]  # fmt: skip


def _configs() -> dict[str, dict[tuple[int, str], list[str]]]:
    """model -> (resolution, kwargs JSON) -> the shipped suites that run it so."""
    from bench.plan.suites import list_suites, load_suite

    used: dict[str, dict[tuple[int, str], list[str]]] = {}
    for suite in list_suites():
        for cell in load_suite(suite).cells:
            kwargs = {k: v for k, v in cell.spec.model_kwargs.items() if k != "init_from"}
            key = (cell.spec.resolution, json.dumps(kwargs, sort_keys=True))
            where = used.setdefault(cell.spec.model, {}).setdefault(key, [])
            if suite not in where:
                where.append(suite)
    return used


def _params(model: str, resolution: int, kwargs: str) -> list[int]:
    """[G, D] parameters (models.param_counts), remembered until a source changes."""

    def count() -> list[int]:
        import models

        return list(models.param_counts(model, resolution, **json.loads(kwargs)))

    return names.remembered("params", json.dumps([model, resolution, kwargs]), count)


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n:,}"


def models_text() -> list[str]:
    """One block per registered model (see the module docstring)."""
    lines = ["models (G / D parameters at the resolutions and widths the shipped suites use):"]
    configs = _configs()
    for name, info in sorted(names.registry()["models"].items()):
        lines += _wrap(info["recipe"] or "(no recipe source)", first=f"  {name}: ")
        for (res, kwargs), suites in sorted(configs.get(name, {(256, "{}"): []}).items()):
            g, d = _params(name, res, kwargs)
            where = ", ".join(suites) or "no shipped suite (defaults)"
            kw = ", ".join(f"{k}={v}" for k, v in json.loads(kwargs).items())
            lines += _wrap(f"{res} px: G {_millions(g)}, D {_millions(d)}; {where}" + (f"; {kw}" if kw else ""))
        for detail in info.get("details", []):
            lines += _wrap(detail)
    return lines


def datasets_text() -> list[str]:
    """Built-in sets, then the paper's (images, resolution, where to download them)."""
    reg = names.registry()
    paper = reg["paper_counts"]
    lines = [f"datasets (built in; the paper's: download, then `{prog_name()} prepare --dataset NAME --src FILE`):"]
    built = [d for d in reg["datasets"] if d not in paper]
    lines += _wrap(", ".join(built) + ", folder:PATH (any image folder)", first="  built in: ")
    for name, count in sorted(paper.items()):
        source = reg["paper_sources"][name]
        lines += _wrap(f"{count:,} images, {source['resolution']} px; {source['notes']}", first=f"  {name}: ")
        lines += [_INDENT + source["url"]] if source["url"] else []
    return lines


_KINDS = {"fid": "FID", "kid": "KID", "pr": "precision/recall"}


def protocol_text(name: str, p: dict[str, Any]) -> str:
    """What protocol ``name`` measures, in words (its registry entry ``p``), and its former name."""
    kind = _KINDS[p["kind"]] + (f" (k = {p['pr_k']})" if p["pr_k"] else "")
    text = f"{kind}, {p['num_gen']:,} generated vs all training images, mode {p['mode']}"
    if p["pre_resize"]:
        text += f", both sets at {p['pre_resize']} px first"
    if p["bn_mode"]:
        text += f", BatchNorm {p['bn_mode']} statistics, {p['gen_batch']} per generator call"
    old = FIRST_NAME.get(name)
    return text + (f"; was {old}" if old else "")


def protocols_text() -> list[str]:
    """Metric names (they spell the protocol), one line each."""
    lines = ["protocols (--protocol NAME; the name spells kind, generated images, reference set, clean-fid mode):"]
    known = names.registry()["protocols"]
    for name in sorted(known, key=lambda n: (list(_KINDS).index(known[n]["kind"]), -known[n]["num_gen"], n)):
        lines += _wrap(protocol_text(name, known[name]), first=f"  {name:<20} ", indent=" " * 23)
    return lines + _wrap(
        "stylegan2-ada's fid50k_full, kid50k_full and pr50k3_full resize with its own Inception (clean-fid mode "
        "legacy_tensorflow); the names here end with the mode they use. fid2k_fastgan is the FastGAN code's own "
        "evaluation. Standard detectors: inception-v3 (FID, KID), vgg16-fc2 (precision/recall).",
        indent="  ",
    )


def detectors_text() -> list[str]:
    """Detector names."""
    known = ", ".join(names.registry()["detectors"])
    return ["detectors (--detector; standard: inception-v3 for FID/KID, vgg16-fc2 for precision/recall):",
            *_wrap(f"{known}, torchscript:PATH (a local file)")]  # fmt: skip


def suites_text() -> list[str]:
    """Shipped suites with their descriptions."""
    from bench.files import read_text
    from bench.plan.suites import list_suites, suite_path

    lines = ["suites (--suite NAME, experiments/NAME.toml):"]
    for suite in list_suites():
        about = _description(read_text(suite_path(suite)))
        lines += _wrap(about, first=f"  {suite}: ")
    return lines


def _description(text: str) -> str:
    import tomllib

    table: Any = tomllib.loads(text).get("suite", {})
    return str(table.get("description", "")) if isinstance(table, dict) else ""


def devices_text() -> list[str]:
    """Device profiles (--device-profile)."""
    from bench.plan.devices import load_profiles

    lines = ["device profiles (--device-profile NAME):"]
    for name, profile in load_profiles().items():
        lines += _wrap(profile.title, first=f"  {name}: ")
    return lines


def listing(what: str | None) -> str:
    """The section ``what`` (one of :data:`SECTIONS`), or every section."""
    render = {"models": models_text, "datasets": datasets_text, "protocols": protocols_text,
              "detectors": detectors_text, "suites": suites_text, "devices": devices_text}  # fmt: skip
    return "\n\n".join("\n".join(render[s]()) for s in ([what] if what else SECTIONS))
