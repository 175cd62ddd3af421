"""Map inc over a 10M-item generator; print the peak RSS growth in MB (VmHWM)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _tasks

import trilane


def vm_hwm_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


if __name__ == "__main__":
    n = int(sys.argv[1])
    kind = sys.argv[2]
    pool = trilane.ProcessPool(2) if kind == "process" else trilane.ThreadPool(2)
    with pool:
        assert sum(pool.map(_tasks.inc, (i for i in range(1000)))) == 500500  # warm up
        before = vm_hwm_kb()
        total = 0
        for value in pool.map(_tasks.inc, (i for i in range(n))):
            total += value
        after = vm_hwm_kb()
    assert total == n * (n + 1) // 2, total
    print(f"growth_mb {(after - before) / 1024:.1f}")
