"""The README stays true to the code: its commands parse, its links exist, its download table names every
paper dataset with the address in bench/data/paper.py, the console script it documents is the CLI."""

from __future__ import annotations

import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest

from bench.cli import build_parser
from bench.cli.registry import COMMANDS
from bench.data.paper import PAPER_DATASETS, prepare_command
from bench.errors import CONSOLE_SCRIPT, BenchError
from bench.results.adhoc import stored_suite
from bench.results.rows import row_fix

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> list[str]:
    """Every ``fewshot-gan-bench ...`` command of the README's bash blocks (continuations joined)."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    found = [line.split("#")[0].strip() for line in lines if "fewshot-gan-bench" in line]
    return [line[line.index("fewshot-gan-bench") :] for line in found]


@pytest.mark.parametrize("command", _commands())
def test_every_readme_command_parses(command: str) -> None:
    argv = shlex.split(command)[1:]
    args = build_parser().parse_args(argv if argv[0] in COMMANDS else ["run", *argv])  # run: the default command
    assert args.command in COMMANDS


def test_the_readme_has_the_quickstart_commands() -> None:
    used = {shlex.split(c)[1] for c in _commands()}
    assert {"prepare", "calibrate", "status", "report", "train", "eval", "--suite"} <= used
    assert "--launcher slurm" in README and "--dry-run" in README


def test_the_download_table_names_every_paper_dataset_and_its_address() -> None:
    table = README[README.index("| datasets | suites | where |") :].split("\n\n")[0]
    for name, info in PAPER_DATASETS.items():
        short = re.sub(r"-(2k|5k|10k)$", "", name)  # art-2k/5k/10k share a cell
        assert name in table or f"{short}-2k/5k/10k" in table, name
        if info.url:
            folder = info.url.rsplit("/", 1)[0] + "/" if "data-efficient-gans" in info.url else info.url
            assert folder in table, (name, info.url)


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_links_to_files_exist(page: str) -> None:
    path = ROOT / page if page == "README.md" else ROOT / "docs" / page
    for target in re.findall(r"\]\(([^)#]+)\)", path.read_text(encoding="utf-8")):
        if not target.startswith("http"):
            assert (path.parent / target).is_file(), (page, target)


def test_the_console_script_is_the_cli_and_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {CONSOLE_SCRIPT: "bench.cli:run"} and CONSOLE_SCRIPT in README
    monkeypatch.setattr(sys, "argv", [f"/venv/bin/{CONSOLE_SCRIPT}"])
    assert build_parser().prog == CONSOLE_SCRIPT  # its usage and error lines name the command the user typed
    monkeypatch.setattr(sys, "argv", ["run_bench.py"])
    assert build_parser().prog == "run_bench.py"


@pytest.mark.parametrize("typed", [f"/venv/bin/{CONSOLE_SCRIPT}", "run_bench.py"])
def test_hints_name_the_program_as_typed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, typed: str) -> None:
    """A fix that is a command (in library modules too) names the console script when it was typed."""
    monkeypatch.setattr(sys, "argv", [typed])
    prog = CONSOLE_SCRIPT if typed.endswith(CONSOLE_SCRIPT) else "python run_bench.py"
    assert prepare_command("obama") == f"{prog} prepare --dataset obama --src PATH_TO_DOWNLOAD"
    assert f"`{prog.removeprefix('python ')} eval --run RUN`" in row_fix()
    with pytest.raises(BenchError, match=f"make one with `{prog.removeprefix('python ')} train"):
        stored_suite(tmp_path, "train")
