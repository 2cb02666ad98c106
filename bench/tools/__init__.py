"""Tools around runs: ``perf`` (:mod:`bench.tools.perf`), ``calibrate``, ``generate``, ``eval``
re-scoring (:mod:`~bench.tools.rescore`) and ``import-official``
(:mod:`~bench.tools.official`)."""
