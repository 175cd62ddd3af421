"""Supervised thread and process pools (the ``engines`` layer).

Modules, one concept each:

* ``_options``  TaskOptions, and how a task is named in error messages
* ``_base``     the task record, PoolFuture, submit/map/shutdown face
* ``_map``      lazy, bounded, auto-chunked map
* ``_thread``   ThreadPool (threads, deadlines, lost-thread accounting)
* ``_process``  ProcessPool (the manager thread that supervises workers)
* ``_direct``   who reads a worker's pipe: the manager, or a caller blocked in ``result()``
* ``_worker_state`` the parent's record of each worker; the start-method default
* ``_poller``   the manager's epoll set, with muting for direct readers
* ``_worker``   the loop inside a worker process
* ``_wire``     framing and pickling (protocol 5, out-of-band buffers)

The package itself imports nothing: a worker process imports ``_worker``
(and what it needs) alone, and ``trilane/__init__.py`` names each module.
"""
