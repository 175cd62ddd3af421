"""Run a long ProcessPool.map; print worker pids, then "running"; exit on Ctrl-C.

Usage: map_forever.py N_ITEMS SECONDS_PER_ITEM
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _tasks

import trilane

if __name__ == "__main__":
    n, per_item = int(sys.argv[1]), float(sys.argv[2])
    with trilane.ProcessPool(2) as pool:
        pids = {pool.submit(_tasks.getpid).result() for _ in range(6)}
        print("pids", *sorted(pids), flush=True)
        total = 0
        for i, value in enumerate(pool.map(_tasks.sleep_then, [per_item] * n, range(n), chunksize=1)):
            total += value
            if i == 0:
                print("running", flush=True)
        print("done", total, flush=True)
