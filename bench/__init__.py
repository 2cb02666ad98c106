"""fewshot-gan-bench: the harness (suites, data, budgets, training loop, metrics, results, report)."""

__version__ = "0.1.0"
