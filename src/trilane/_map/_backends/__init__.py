"""Map backends, one module each, imported only when a run asks for them by name.

A missing optional dependency surfaces here as an ImportError that says what
to install (``pip install "trilane[dask]"``), not as a failure to import trilane.
"""

from __future__ import annotations

import importlib

from ._base import Backend

__all__ = ["Backend", "load_backend"]

_MODULES = {
    "serial": ("._serial", "SerialBackend"),
    "thread": ("._thread", "ThreadBackend"),
    "process": ("._process", "ProcessBackend"),
    "async": ("._async", "AsyncBackend"),
    "dask": ("._dask", "DaskBackend"),
}


def load_backend(name: str) -> type[Backend]:
    """Return the Backend class for *name* (one of serial, thread, process, async, dask)."""
    try:
        module_name, class_name = _MODULES[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(map(repr, _MODULES))}") from None
    module = importlib.import_module(module_name, __name__)
    cls: type[Backend] = getattr(module, class_name)
    return cls
