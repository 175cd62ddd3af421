"""The dask backend: chunks run on a Dask distributed cluster.

It uses the current ``distributed`` client when there is one (create
``distributed.Client("tcp://scheduler:8786")`` first to use a cluster);
otherwise it starts a private ``LocalCluster`` of ``workers`` processes for
the run and closes it afterwards.  Dask cannot stop a running task, so a
timeout fails the item at its deadline and cancels its future.

Needs the ``dask`` extra: ``pip install "trilane[dask]"``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._base import Backend, ChunkResult, chain_future, run_chunk, with_deadline
from ._process import default_process_workers

__all__ = ["DaskBackend"]

try:
    import distributed  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError as exc:  # pragma: no cover - exercised by the "missing extra" test
    raise ImportError(
        'backend="dask" needs dask.distributed, which is not installed. Install it with: pip install "trilane[dask]"'
    ) from exc


class DaskBackend(Backend):
    """Runs chunks as Dask futures."""

    name = "dask"
    stops_by = "its Dask future was cancelled (the task itself may run on)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workers = self.options.workers or default_process_workers()
        self._client: Any = None
        self._own: Any = None

    @property
    def workers(self) -> int:
        return self._workers

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._client = distributed.default_client()  # type: ignore[no-untyped-call, unused-ignore]
        except ValueError:

            def make() -> Any:
                cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call, unused-ignore]
                    n_workers=self._workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
                return cluster, distributed.Client(cluster)  # type: ignore[no-untyped-call, unused-ignore]

            self._own, self._client = await loop.run_in_executor(None, make)

    def submit(self, items: list[Any]) -> asyncio.Future[ChunkResult]:
        loop = asyncio.get_running_loop()
        df = self._client.submit(run_chunk, self.fn, items, True, pure=False, priority=self.options.priority)
        fut = chain_future(loop, df.add_done_callback, df.result)
        return with_deadline(loop, fut, self.options.timeout, items[0], self.stops_by, df.cancel)

    async def aclose(self, *, cancel: bool) -> None:
        client, cluster = self._client, self._own
        self._client = self._own = None
        if cluster is None or client is None:
            return

        def close() -> None:
            client.close()
            cluster.close()

        await asyncio.get_running_loop().run_in_executor(None, close)
