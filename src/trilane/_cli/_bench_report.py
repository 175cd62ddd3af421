"""From ``trilane bench``'s measurements to the seed's table, bench.md and bench.png.

The seed's table has four columns, model | advantages | costs | when to use,
and an empty last column.  Here the first three get this machine's numbers,
and :func:`when_to_use` fills the last one by the rules documented in
``docs/bench.md`` (the same text is in each function's docstring):

* process: worth it for CPU-bound items when the measured speedup on all
  cores is at least 1.2×; an item must compute at least 10× the process round
  trip (overhead ≤ 10 %), and each MiB it sends needs 10× the measured
  per-MiB cost in compute.  Below 1.2×, processes are for isolation only.
* threads: blocking I/O up to the largest measured concurrency at which
  threads still reach 80 % of async's waits/s; CPU work only if their
  speedup reached 1.2× (a free-threaded Python).
* async: I/O-bound work beyond that concurrency (or when memory matters:
  the measured bytes per coroutine against per thread), in short steps.
* busy machine: when the load average exceeds 0.75 per CPU, or one busy
  thread got less than 90 % of a core, a note says so (and the process rule
  asks for a rerun when it found no speedup).

All functions here are pure: they take the results dict that
:mod:`._bench` builds, so tests feed them made-up numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["MODELS", "busy_note", "fmt_bytes", "fmt_seconds", "table_rows", "to_markdown", "when_to_use", "write_chart"]

MODELS = ("process", "threads", "async")
_KEY = {"process": "process", "threads": "thread", "async": "async"}
SPEEDUP_WORTH_IT = 1.2
THREADS_KEEP_UP = 0.8
OVERHEAD_SHARE = 0.10
BUSY_LOAD = 0.75  # load average per CPU above which the run counts as disturbed
BUSY_SHARE = 0.9  # share of a core one busy thread must get for the run to count as undisturbed


def fmt_seconds(s: float) -> str:
    """``0.0000042`` -> ``4.2 µs``."""
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.3g} µs"
    return f"{s * 1e9:.3g} ns"


def fmt_bytes(b: float) -> str:
    """``13271`` -> ``13 KiB``."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b:.0f} B"


def fmt_rate(r: float) -> str:
    """``12211.4`` -> ``12,211/s``."""
    return f"{r:,.0f}/s"


def per_mib_process(results: dict[str, Any]) -> float:
    """Seconds each extra MiB adds to a message to a process (from the 1 KiB and 10 MiB timings)."""
    comm = results["communication"]["process"]
    extra = float(comm["10 MiB"]) - float(comm["1 KiB"])
    return max(0.0, extra) / (10 - 1 / 1024)


def thread_limit(results: dict[str, Any]) -> int | None:
    """The largest measured concurrency at which threads reach 80 % of async's waits/s (None: not even 1)."""
    io = results["io_throughput"]
    best: int | None = None
    for level in sorted(io["async"], key=int):
        if io["thread"][level] >= THREADS_KEEP_UP * io["async"][level]:
            best = int(level)
        else:
            break
    return best


def busy_note(results: dict[str, Any]) -> str:
    """A warning when other programs competed for the CPUs during the run (else "")."""
    m = results["machine"]
    load = max(m.get("load_before", 0.0), m.get("load_after", 0.0))
    share = m.get("cpu_share", 1.0)
    if load <= BUSY_LOAD * m["cpus"] and share >= BUSY_SHARE:
        return ""
    return (
        f"The machine was busy (load average {load:.1f} on {m['cpus']} CPUs; one busy thread got "
        f"{share:.0%} of a core): CPU-bound numbers are lower than on an idle machine. "
        "Run `trilane bench` again when it is idle."
    )


def when_to_use(results: dict[str, Any]) -> dict[str, str]:
    """The "when to use" column, by the rules in the module docstring (and docs/bench.md)."""
    cpus = results["machine"]["cpus"]
    cpu = results["cpu_speedup"]
    rt_p = results["roundtrip"]["process"]
    mib = per_mib_process(results)
    mem = results["memory"]
    limit = thread_limit(results)
    top = max(int(level) for level in results["io_throughput"]["async"])
    out: dict[str, str] = {}

    if cpu["process"] >= SPEEDUP_WORTH_IT:
        out["process"] = (
            f"CPU-bound Python: expect ≈{cpu['process']:.1f}× on {cpus} cores when each item computes "
            f"≥ {fmt_seconds(rt_p / OVERHEAD_SHARE)} (10× the {fmt_seconds(rt_p)} round trip) "
            f"and ≥ {fmt_seconds(mib / OVERHEAD_SHARE)} per MiB it sends; also to isolate crashes"
        )
    else:
        out["process"] = (
            f"isolation only (a crash or leak stays in the worker): CPU speedup was just "
            f"{cpu['process']:.2f}× on {cpus} core(s) here"
            + ("; the machine was busy, so measure again when it is idle" if busy_note(results) else "")
        )

    thread_cpu = (
        f"; CPU-bound work too ({cpu['thread']:.1f}×)"
        if cpu["thread"] >= SPEEDUP_WORTH_IT
        else f"; not CPU-bound Python ({cpu['thread']:.2f}×, the GIL)"
    )
    if limit is None:
        out["threads"] = "blocking calls you cannot make async, at low concurrency" + thread_cpu
    elif limit >= top:
        out["threads"] = (
            f"blocking I/O (libraries without async) up to at least {limit} concurrent waits "
            f"(≥ {THREADS_KEEP_UP:.0%} of async's rate), at {fmt_bytes(mem['thread'])} each" + thread_cpu
        )
    else:
        out["threads"] = (
            f"blocking I/O (libraries without async) up to ~{limit} concurrent waits; "
            f"beyond that they fall below {THREADS_KEEP_UP:.0%} of async's rate" + thread_cpu
        )

    ratio = mem["thread"] / mem["async"] if mem["async"] > 0 else float("inf")
    beyond = f"more than {limit} concurrent waits" if limit is not None and limit < top else "many concurrent waits"
    out["async"] = (
        f"I/O-bound work with {beyond}, or when memory counts "
        f"({fmt_bytes(mem['async'])} per coroutine, {ratio:.0f}× less than a thread); "
        "keep every step short (a blocking call stalls them all: the watchdog shows where)"
    )
    return out


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The seed's table: (model, advantages, costs, when to use), with this machine's numbers."""
    sw = results["switch"]
    comm = results["communication"]
    start = results["startup"]
    mem = results["memory"]
    io = results["io_throughput"]
    cpu = results["cpu_speedup"]
    cpus = results["machine"]["cpus"]
    top = max(io["async"], key=int)
    use = when_to_use(results)
    capped = int(io["process_workers"][top])
    return [
        (
            "process",
            f"independent state (a crash stays in its worker); CPU speedup {cpu['process']:.2f}× on {cpus} cores",
            f"enormous communication cost: {fmt_seconds(comm['process']['1 KiB'])} per 1 KiB message, "
            f"{fmt_seconds(comm['process']['10 MiB'])} per 10 MiB; start {fmt_seconds(start['process'])}; "
            f"{fmt_bytes(mem['process'])} private memory each; switch {fmt_seconds(sw['process'])}; "
            f"{fmt_rate(io['process'][top])} at {top} waits ({capped} processes)",
            use["process"],
        ),
        (
            "threads",
            f"shared state: a hand-off costs {fmt_seconds(results['roundtrip']['thread'])}, "
            f"10 MiB passes by reference in {fmt_seconds(comm['thread']['10 MiB'])}; "
            f"blocking I/O overlaps: {fmt_rate(io['thread'][top])} at {top} waits",
            f"race conditions (locks); switch {fmt_seconds(sw['thread'])}; start {fmt_seconds(start['thread'])}; "
            f"{fmt_bytes(mem['thread'])} each; CPU speedup {cpu['thread']:.2f}× (GIL)",
            use["threads"],
        ),
        (
            "async",
            f"task switch {fmt_seconds(sw['async'])}; {fmt_bytes(mem['async'])} per coroutine; "
            f"{fmt_rate(io['async'][top])} at {top} waits; no locks between awaits",
            "every wait needs `await`; one blocking call stalls every task; "
            f"start {fmt_seconds(start['async'])}; CPU speedup {cpu['async']:.2f}×",
            use["async"],
        ),
    ]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(results: dict[str, Any]) -> str:
    """bench.md: the seed's table, then every measurement behind it."""
    m = results["machine"]
    io = results["io_throughput"]
    levels = sorted(io["async"], key=int)
    parts = [
        "# trilane bench: processes, threads and coroutines on this machine",
        "",
        f"Measured {m['date']} on {m['cpus']} CPU(s), {m['platform']}, Python {m['python']} "
        f"(start method `{m['start_method']}`), {'quick run' if results['quick'] else 'full run'} "
        f"in {results['seconds']:.0f} s. Timings are the best of {results['repeat']}.",
        "",
        *([busy_note(results), ""] if busy_note(results) else []),
        _md_table(["model", "advantages", "costs", "when to use"], [list(r) for r in table_rows(results)]),
        "",
        "## Per unit",
        "",
        _md_table(
            ["", "process", "thread", "coroutine"],
            [
                ["switch (one way)"] + [fmt_seconds(results["switch"][k]) for k in ("process", "thread", "async")],
                ["start + join"] + [fmt_seconds(results["startup"][k]) for k in ("process", "thread", "async")],
                ["memory each"] + [fmt_bytes(results["memory"][k]) for k in ("process", "thread", "async")],
                ["tiny task round trip (pool)"]
                + [fmt_seconds(results["roundtrip"][k]) for k in ("process", "thread")]
                + [fmt_seconds(results["switch"]["async"] * 2)],
            ],
        ),
        "",
        f"A 2-worker process pool gives its first result after {fmt_seconds(results['startup']['process_pool'])}.",
        "",
        "## Communication: send a payload, get a small reply",
        "",
        _md_table(
            ["payload", "process", "thread", "coroutine"],
            [
                [label] + [fmt_seconds(results["communication"][k][label]) for k in ("process", "thread", "async")]
                for label in results["communication"]["process"]
            ],
        ),
        "",
        f"## I/O-bound throughput: waits/s, each wait {results['io_wait'] * 1000:.0f} ms",
        "",
        _md_table(
            ["concurrent waits", "process", "thread", "coroutine", "ideal"],
            [
                [
                    level,
                    f"{fmt_rate(io['process'][level])} ({int(io['process_workers'][level])} procs)",
                    fmt_rate(io["thread"][level]),
                    fmt_rate(io["async"][level]),
                    fmt_rate(int(level) / results["io_wait"]),
                ]
                for level in levels
            ],
        ),
        "",
        "## CPU-bound speedup over one unit",
        "",
        _md_table(
            ["process", "thread", "coroutine"],
            [[f"{results['cpu_speedup'][k]:.2f}×" for k in ("process", "thread", "async")]],
        ),
        "",
        f"{results['cpu_speedup']['items']} pure-Python items of "
        f"{fmt_seconds(results['cpu_speedup']['item_seconds'])} each on {m['cpus']} workers.",
        "",
        "## How the last column was derived",
        "",
        "See docs/bench.md. Rules: processes pay off for CPU-bound items at ≥ "
        f"{SPEEDUP_WORTH_IT}× speedup when overhead stays ≤ {OVERHEAD_SHARE:.0%}; threads serve blocking I/O "
        f"while they reach {THREADS_KEEP_UP:.0%} of async's waits/s; async takes over beyond that.",
        "",
    ]
    return "\n".join(parts)


def to_json(results: dict[str, Any]) -> str:
    """bench.json: every number, the table and the derived column."""
    data = dict(results)
    columns = ("model", "advantages", "costs", "when_to_use")
    data["table"] = [dict(zip(columns, row, strict=True)) for row in table_rows(results)]
    return json.dumps(data, indent=2) + "\n"


def write_chart(results: dict[str, Any], path: Path) -> bool:
    """Draw bench.png; return False (and draw nothing) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colors = {"process": "#d62728", "thread": "#1f77b4", "async": "#2ca02c"}
    labels = {"process": "process", "thread": "thread", "async": "coroutine"}
    kinds = ("process", "thread", "async")
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    m = results["machine"]
    fig.suptitle(
        f"trilane bench: processes, threads, coroutines on {m['cpus']} CPU(s), Python {m['python']}"
        f" ({'quick' if results['quick'] else 'full'} run, {m['date']})"
        + ("\nthe machine was busy during this run: CPU-bound numbers are low" if busy_note(results) else "")
    )

    def bars(ax: Any, values: dict[str, float], title: str, ylabel: str, log: bool = True) -> None:
        xs = [labels[k] for k in kinds]
        ax.bar(xs, [values[k] for k in kinds], color=[colors[k] for k in kinds])
        if log:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        for i, k in enumerate(kinds):
            ax.annotate(
                fmt_bytes(values[k]) if "bytes" in ylabel else fmt_seconds(values[k]) if log else f"{values[k]:.2f}×",
                (i, values[k]),
                ha="center",
                va="bottom",
                fontsize=9,
            )

    bars(axes[0][0], results["switch"], "switch cost (one way)", "seconds (log)")
    bars(axes[0][1], results["startup"], "start-up (start + join one unit)", "seconds (log)")
    bars(axes[0][2], results["memory"], "memory per unit", "bytes (log)")
    ax = axes[1][0]
    payloads = list(results["communication"]["process"])
    sizes = [1024, 1024**2, 10 * 1024**2]
    for k in kinds:
        ax.plot(sizes, [results["communication"][k][p] for p in payloads], "o-", color=colors[k], label=labels[k])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, payloads)
    ax.set_title("communication cost by payload")
    ax.set_ylabel("seconds per message (log)")
    ax.legend()
    ax = axes[1][1]
    io = results["io_throughput"]
    levels = sorted(io["async"], key=int)
    xs = [int(v) for v in levels]
    cap = max(int(w) for w in io["process_workers"].values())
    for k in kinds:
        label = f"process (≤ {cap} workers)" if k == "process" else labels[k]
        ax.plot(xs, [io[k][v] for v in levels], "o-", color=colors[k], label=label)
    ax.plot(xs, [x / results["io_wait"] for x in xs], "k:", label="ideal")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"I/O-bound throughput ({results['io_wait'] * 1000:.0f} ms waits)")
    ax.set_xlabel("concurrent waits")
    ax.set_ylabel("waits per second (log)")
    ax.legend()
    bars(axes[1][2], results["cpu_speedup"], "CPU-bound speedup", "× over one unit", log=False)
    axes[1][2].axhline(m["cpus"], color="k", linestyle=":", label=f"ideal ({m['cpus']}×)")
    axes[1][2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
