"""Property-based tests (hypothesis): run-id hashing and the suite parser.

* The same resolved spec always gives the same run id (round trips, key order, the suite name);
  any change of a field that affects results changes it; run ids are safe folder names.
* A generated valid suite expands to exactly its grid, with the same run ids however it is written.
* Any mutation of a suite file either loads or raises a one-line :class:`BenchError` naming the
  file; nothing else escapes, and whatever loads can be hashed and planned.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, reject, settings
from hypothesis import strategies as st

from bench.errors import BenchError
from bench.plan.specs import RunSpec
from bench.plan.suites import load_suite

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------------------------------------- RunSpec

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_:/.", min_size=1, max_size=12)
positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)
fractions = st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=4, unique=True)
kwarg_values = st.one_of(
    st.integers(-1000, 1000), positive, st.booleans(), st.text(max_size=6), st.lists(st.integers(0, 9), max_size=3)
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),  # like registered names
    "dataset": names,
    "resolution": st.sampled_from([32, 64, 128, 256, 512, 1024]),
    "seed": st.integers(0, 2**31),
    "model_kwargs": st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=6), kwarg_values, max_size=4),
    "budget_hours": st.none() | positive,
    "speed_ratio": positive,
    "budget_scale": positive,
    "num_gpus": st.integers(1, 8),
    "max_iters": st.none() | st.integers(1, 10**7),
    "max_kimg": st.none() | positive,
    "budget_pin": st.sampled_from([None, "iters", "kimg"]),
    "protocols": st.lists(names, max_size=3).map(tuple),
    "detector": names,
    "pr_detector": names,
    "eval_fractions": fractions.map(tuple),
    "grid_size": st.integers(1, 64),
    "precision": st.sampled_from(["fp32", "bf16"]),
    "compile": st.booleans(),
    "fused_adam": st.booleans(),
    "cuda_graphs": st.booleans(),
    "channels_last": st.booleans(),
    "resize_filter": st.sampled_from(["lanczos", "bilinear"]),
    "data_fingerprint": st.none() | st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
}
HASHED = sorted(FIELDS)
# A pinned budget ('iters' or 'kimg') is the only limit: the time budget and the other cap change nothing.
IGNORED_WHEN_PINNED = {"iters": {"budget_hours", "speed_ratio", "max_kimg"},
                       "kimg": {"budget_hours", "speed_ratio", "max_iters"}}  # fmt: skip


def _spec_or_none(**fields: Any) -> RunSpec | None:
    """A RunSpec, or None where the fields are refused together (a budget under MIN_BUDGET_SECONDS: the hours,
    speed ratio and scale drawn apart can multiply to 0.0009 s)."""
    try:
        return RunSpec(**fields)
    except BenchError:
        return None


specs = st.builds(_spec_or_none, suite=names, budget_source=names, **FIELDS).filter(lambda s: s is not None)


def _canonical(value: Any) -> str:
    """How a field value enters the hash (JSON; tuples and lists alike)."""
    return json.dumps(value, sort_keys=True)


def test_every_result_field_is_covered() -> None:
    unhashed = {"suite", "accelerator", "budget_source", "compute"}
    assert set(HASHED) == {f.name for f in dataclasses.fields(RunSpec)} - unhashed


@SETTINGS
@given(specs, names)
def test_same_spec_same_run_id(spec: RunSpec, suite: str) -> None:
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.run_id == spec.run_id
    assert dataclasses.replace(spec, suite=suite).run_id == spec.run_id
    assert dataclasses.replace(spec, budget_source=suite).run_id == spec.run_id  # why, not what
    assert dataclasses.replace(spec, accelerator="gpu").run_id == spec.run_id  # where it runs, not what
    shuffled = dict(reversed(list(spec.model_kwargs.items())))
    assert dataclasses.replace(spec, model_kwargs=shuffled).run_id == spec.run_id
    assert spec.run_id == spec.run_id  # not random, not cached state


@SETTINGS
@given(specs, st.data())
def test_changing_a_result_field_changes_run_id(spec: RunSpec, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(HASHED))
    value = data.draw(FIELDS[name])
    try:
        changed = dataclasses.replace(spec, **{name: value})
    except BenchError:  # the new value refused with the others (a budget under the minimum): not a run
        reject()
    assume(_canonical(getattr(changed, name)) != _canonical(getattr(spec, name)))
    if name in IGNORED_WHEN_PINNED.get(spec.budget_pin or "", ()):
        assert changed.run_id == spec.run_id, name
    else:
        assert changed.run_id != spec.run_id, name


@SETTINGS
@given(specs)
def test_run_id_is_a_safe_folder_name(spec: RunSpec) -> None:
    rid = spec.run_id
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", rid) and not rid.startswith(".")
    assert rid.endswith(f"-{spec.resolution}-s{spec.seed}-{rid[-10:]}")


# ---------------------------------------------------------------------------------------------- suite files

MODELS = ["baseline", "fastgan", "stylegan2-lite", "biggan"]
IMAGE_FOLDER = Path(tempfile.gettempdir()) / "fewshot-bench my images"  # suites check that a folder: path exists
IMAGE_FOLDER.mkdir(exist_ok=True)
DATASETS = ["shapes", "emoji-faces", "obama", f"folder:{IMAGE_FOLDER}"]
PROTOCOLS = ["fid5k_full_clean", "kid1k_full_clean", "pr1k3_full_clean", "fid2k_fastgan"]
BARE = re.compile(r"[A-Za-z0-9_-]+")


def toml_value(v: Any) -> str:
    """``v`` written as a TOML value (inline tables and arrays for containers)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def toml_key(k: str) -> str:
    return k if BARE.fullmatch(k) else json.dumps(k, ensure_ascii=False)


def toml_doc(data: dict[str, Any], order: list[str] | None = None) -> str:
    """A suite document: plain keys first, then ``[table]`` and ``[models.<name>]`` sections."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table in order or list(data):
        body = data.get(table)
        if not isinstance(body, dict):
            continue
        if table == "models" and all(isinstance(m, dict) for m in body.values()) and body:
            for name, mt in body.items():
                lines.append(f"\n[models.{toml_key(name)}]")
                lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in mt.items()]
            continue
        lines.append(f"\n[{toml_key(table)}]")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


@st.composite
def valid_suites(draw: st.DrawFn) -> dict[str, Any]:
    models = draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=3, unique=True))
    budget: dict[str, Any] = {}
    if draw(st.booleans()):
        budget["hours"] = draw(st.sampled_from([1, 2.5, 5, 8.0, 24]))
    if not budget or draw(st.booleans()):
        budget["max_iters"] = draw(st.integers(1, 100_000))
    eval_ = {
        "protocols": draw(st.lists(st.sampled_from(PROTOCOLS), max_size=3, unique=True)),
        "detector": draw(st.sampled_from(["inception-v3", "inception-random"])),
        "fractions": draw(st.lists(st.sampled_from([0.25, 0.5, 0.75, 1.0]), min_size=1, max_size=4, unique=True)),
    }
    return {
        "suite": {
            "name": draw(st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)),
            "resolution": draw(st.sampled_from([32, 64, 256, 1024])),
            "datasets": draw(st.lists(st.sampled_from(DATASETS), min_size=1, max_size=3, unique=True)),
            "seeds": draw(st.lists(st.integers(0, 1000), min_size=1, max_size=3, unique=True)),
        },
        "budget": budget,
        "eval": eval_,
        "models": {
            m: {
                "kwargs": draw(
                    st.dictionaries(st.sampled_from(["ngf", "ndf", "lr", "batch_size"]), st.integers(1, 64), max_size=2)
                )
            }  # fmt: skip
            for m in models
        },
    }


def _load(path: Path, text: str, **kw: Any):
    path.write_text(text, encoding="utf-8")
    return load_suite(str(path), **kw)


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("suites") / "suite.toml"


@SETTINGS
@given(valid_suites(), st.randoms(use_true_random=False))
def test_valid_suite_expands_to_its_grid(suite_file: Path, data: dict[str, Any], rnd) -> None:
    suite = _load(suite_file, toml_doc(data))
    s = data["suite"]
    assert len(suite.cells) == len(data["models"]) * len(s["datasets"]) * len(s["seeds"])
    for cell in suite.cells:
        spec = cell.spec
        assert spec.suite == s["name"] and spec.resolution == s["resolution"]
        assert spec.model_kwargs == data["models"][spec.model]["kwargs"]
        assert spec.max_iters == data["budget"].get("max_iters")
        assert spec.budget_hours == data["budget"].get("hours")
        assert list(spec.protocols) == data["eval"]["protocols"]
        assert set(spec.eval_fractions) == set(data["eval"]["fractions"]) | {1.0}
    ids = [c.spec.run_id for c in suite.cells]
    assert len(set(ids)) == len(ids)
    # written differently (table order, key order, ints as floats): the same run ids
    order = ["models", "eval", "budget", "suite"]
    rnd.shuffle(order)
    shuffled = {t: dict(reversed(list(v.items()))) for t, v in data.items()}
    if "hours" in shuffled["budget"]:
        shuffled["budget"]["hours"] = float(shuffled["budget"]["hours"])
    again = _load(suite_file, toml_doc(shuffled, order))
    assert sorted(c.spec.run_id for c in again.cells) == sorted(ids)
    # a result-affecting change (budget scale, speed ratio, iterations): all new run ids
    scaled = _load(suite_file, toml_doc(data), budget_scale=0.5)
    assert not {c.spec.run_id for c in scaled.cells} & set(ids)
    more = json.loads(json.dumps(data))
    more["budget"]["max_iters"] = data["budget"].get("max_iters", 0) + 1
    assert not {c.spec.run_id for c in _load(suite_file, toml_doc(more)).cells} & set(ids)


toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
    st.dates(),
    st.sampled_from(
        ["", "shapes", "baseline", "fid5k_full_clean", "inception-v3", "../x", "a/b", "folder:", "nope.toml"]
    ),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "x y"]), inner, max_size=2),
    max_leaves=6,
)
KNOWN_KEYS = {
    "suite": ["name", "resolution", "datasets", "seeds", "include", "description", "reference_gpu", "bogus"],
    "budget": ["hours", "max_iters", "max_kimg", "pin", "speed_ratio", "num_gpus", "accelerator", "bogus"],
    "eval": ["protocols", "detector", "fractions", "grid_size", "bogus"],
    "model": [
        "kwargs",
        "max_iters",
        "max_kimg",
        "budget_pin",
        "budget_hours",
        "precision",
        "needs",
        "label",
        "compile",
        "fused_adam",
        "bogus",
    ],
    "slurm": ["partition", "gpus_per_node", "gres", "extra_sbatch", "bogus"],
}


@st.composite
def mutated_suites(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(valid_suites())
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["suite", "budget", "eval", "model", "slurm", "top"]))
        if where == "top":
            key = draw(st.sampled_from(["suite", "budget", "eval", "models", "slurm", "extra"]))
            data[key] = draw(toml_values)
            continue
        models_table = data["models"] if isinstance(data["models"], dict) else {}  # "top" may have replaced it
        table = data.setdefault(where, {}) if where != "model" else next(iter(models_table.values()), None)
        if not isinstance(table, dict):
            continue
        key = draw(st.sampled_from(KNOWN_KEYS[where]))
        if where == "model" and isinstance(table.get("kwargs"), dict) and draw(st.booleans()):
            table["kwargs"][draw(st.sampled_from(["ngf", "lr", "x"]))] = draw(toml_values)
        elif draw(st.booleans()) and key in table:
            del table[key]
        else:
            table[key] = draw(toml_values)
    return data


EXAMPLE = {
    "suite": {"name": "s", "resolution": 32, "datasets": ["shapes"], "seeds": [0]},
    "budget": {"max_iters": 2},
    "models": {"baseline": {"kwargs": {"x": [datetime.date(2020, 1, 1)]}}},
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_suites())
@example(EXAMPLE)
@example(EXAMPLE | {"suite": 3})
@example(EXAMPLE | {"budget": {"hours": math.nan}})
def test_any_suite_loads_or_gives_one_line_error(suite_file: Path, data: dict[str, Any]) -> None:
    try:
        suite = _load(suite_file, toml_doc(data))
    except BenchError as exc:
        message = str(exc)
        assert "\n" not in message and str(suite_file.parent) in message, message
        return
    for cell in suite.cells:  # what loads can be hashed, written and planned
        json.dumps(cell.spec.to_dict())
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", cell.spec.run_id)
        limits = (cell.spec.max_iters, cell.spec.max_kimg, cell.spec.budget_seconds)
        assert any(v is not None for v in limits) and cell.spec.iteration_limit(4)[0] != 0
        assert cell.spec.budget_seconds is None or 0 < cell.spec.budget_seconds < math.inf
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", cell.spec.suite)
