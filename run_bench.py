#!/usr/bin/env python
"""fewshot-gan-bench command line: ``python run_bench.py --suite smoke`` (see ``--help``)."""

from bench.cli import run

if __name__ == "__main__":
    run()
