#!/usr/bin/env python
"""fewshot-gan-bench command line: ``python run_bench.py --suite smoke`` (see ``--help``)."""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
