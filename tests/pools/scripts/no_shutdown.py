"""Use both pools and never shut them down: the interpreter must still exit."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _tasks

import trilane

if __name__ == "__main__":
    pool = trilane.ProcessPool(2)
    pids = {pool.submit(_tasks.getpid).result() for _ in range(4)}
    print("pids", *sorted(pids), flush=True)
    busy = pool.submit(_tasks.sleep_then, 60)  # still running at exit: killed, not waited for
    threads = trilane.ThreadPool(2)
    print(threads.submit(_tasks.inc, 1).result(), flush=True)
