"""Data: dataset names -> cached uint8 tensors (:mod:`bench.data.catalog`). Built-in sets
(:mod:`~bench.data.builtin`), image folders (:mod:`~bench.data.folders`) and the paper's prepared
sets (:mod:`~bench.data.paper`, :mod:`~bench.data.prepare`, :mod:`~bench.data.archives`) go
through one cache (:mod:`~bench.data.store`); training draws batches with
:mod:`~bench.data.sampler`. Imports point one way: catalog -> sources -> store/images."""
