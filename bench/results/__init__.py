"""Results: run folders and their files (:mod:`~bench.results.runs`), atomic writes
(:mod:`~bench.results.io`), run locks (:mod:`~bench.results.lock`), the environment recorded in
each spec (:mod:`~bench.results.envinfo`) and every row as one tidy DataFrame
(:mod:`~bench.results.collect`)."""
