"""Training: one cell under its lock (:mod:`~bench.training.cell`) opens a run
(:mod:`~bench.training.setup`) and runs the generic loop (:mod:`~bench.training.loop`), which
evaluates (:mod:`~bench.training.evaluation`) and checkpoints (:mod:`~bench.training.checkpoints`)
on the device helpers of :mod:`~bench.training.device`."""
