"""The GPU acceptance check (``run_bench.py gpu-check``, ``scripts/gpu-check.sh``): every CUDA path
of the harness exercised in one command, with one JSON and one Markdown summary."""
