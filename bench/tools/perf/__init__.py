"""The performance benchmark (``run_bench.py perf``): how close the harness runs to the hardware.

Per model, on one device, in one process:

- training-step time: single steps of the real loop (:func:`bench.training.loop.train_steps`: Sampler,
  autocast, loss sums, divergence flag, budget checks) alternating with ``model.train_step``
  alone on a pre-made batch, at the same step indices; each synchronised, wall clock and process
  CPU time; medians of N after warm-up;
- harness overhead two ways: (loop step - model step) / loop step, per adjacent pair (noisy on a
  shared machine), and directly, by running the loop over a model that does no work (data,
  budget, loss sums, logging only); plus the augmentation and EMA calls inside the model's step,
  timed on one extra step;
- FLOPs per step (``torch.utils.flop_counter``'s formulas, one eager step), achieved FLOP/s and
  its ratio to the device's peak, measured just before with a matmul of the same dtype (best of
  5); on the CPU also per CPU-second, which contention from other processes does not dilute;
- peak memory, images/s, and evaluation throughput (generation + resize + detector features
  through :mod:`bench.metrics`' own path, against the detector alone on ready batches), and the
  reference features: computed once, then read from the cache.

Optionally the naive data path (a torch DataLoader decoding and transforming PIL images every
step, as the official FastGAN code does) is timed beside the Sampler. Results go to
``<out>/perf/perf-<device>-<res>px-<time>.json`` with the environment and settings.
"""
