"""The dask backend (needs the dask extra).

No no_leaks check here: dask.distributed keeps process-wide helper threads
(Dask-Offload, Dask-Callback-Thread) alive after its clients close, by design.
"""

from __future__ import annotations

import pytest
from mapfuncs import double, fail_on_odd

import trilane


@pytest.mark.slow
def test_dask_backend_matches_the_oracle() -> None:
    pytest.importorskip("distributed")
    out = list(trilane.map(fail_on_odd, range(10), backend="dask", workers=1, errors="collect"))
    assert [v if not isinstance(v, trilane.Failure) else ("F", v.item) for v in out] == [
        0, ("F", 1), 2, ("F", 3), 4, ("F", 5), 6, ("F", 7), 8, ("F", 9)
    ]  # fmt: skip
    assert list(trilane.map(double, range(5), backend="dask", workers=1)) == [0, 2, 4, 6, 8]
