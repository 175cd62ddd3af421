"""trilane.map: one front end over serial, thread, process, async and dask backends.

Modules: ``_front`` (map, amap, the iterators), ``_driver`` (the one engine
that gives every option its meaning), ``_options`` (validation, Backoff,
rates), ``_rate`` (token bucket), ``_checkpoint`` (JSONL resume),
``_progress`` (rich bar), ``_auto`` (backend choice), ``_outcome`` (public
records), and ``_backends`` (one module per backend, loaded by name).

The package itself imports nothing: a process worker that unpickles
``_chunk.run_chunk`` imports that module alone, and ``trilane/__init__.py``
names each module.
"""
