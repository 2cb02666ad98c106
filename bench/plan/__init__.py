"""The plan: what runs. Suites as data (``experiments/*.toml``, :mod:`bench.plan.suites`) expand
into frozen run specs (:mod:`bench.plan.specs`, the run id is their hash) with their budgets
(:mod:`bench.plan.budget`, the only clock) and launch settings (:mod:`bench.plan.launching`)."""
