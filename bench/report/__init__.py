"""Collected results -> paper-style tables (LaTeX booktabs, Markdown, CSV) and figures.

``python run_bench.py report --suite NAME`` ends in :func:`bench.report.writer.write_report`. The
report reads only the tidy table of :func:`bench.results.collect.collect`, the runs' states and the
files its rows name (sample grids, snapshots); it never trains. The published numbers sit beside ours
with the difference, only where the protocol matches.
"""
