"""Run the benchmark suite and print the table: ``python -m benchmarks`` (or ``python benchmarks/run.py``).

    python -m benchmarks                      # everything (several minutes on 2 cores)
    python -m benchmarks --workloads A,E      # a subset
    python -m benchmarks --repeats 11 --threads 1
    python -m benchmarks --quick              # a short smoke run (fewer epochs, sizes, repeats)

Workloads (see contestants.py, chain.py, memory.py, cnn.py, pinn.py):
    A  the course task: 2-25-25-25-1 (ReLU, ReLU, Tanh, Tanh), batch 100, 100 epochs of 1,000 points
    B  compute-bound: 2-512-512-512-1, batch 1,000, 3 epochs of 10,000 points
    C  a chain of N tanh ops: record + sweep time per node, N = 1,000 ... 200,000
    D  memory: growth over 10,000 steps, saved tensors after a sweep, peak on B
    E  the digits CNN of examples/digits.py: time per epoch, tapegrad vs torch.autograd
    P  the physics-informed network (second derivatives): tapegrad vs torch.autograd, 200 steps
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import inspect
import platform
import sys

if __package__ in (None, ""):       # run as a script: make `benchmarks` importable
    import os
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import torch  # noqa: E402

from benchmarks import chain, cnn, memory, pinn  # noqa: E402
from benchmarks.contestants import CONTESTANTS, WORKLOAD_A, WORKLOAD_B  # noqa: E402
from benchmarks.timing import alternate  # noqa: E402

try:        # added by the data-parallel work; optional
    from benchmarks import ddp
except ImportError:
    ddp = None

TARGETS = {"A": dict(autograd=0.5, floor=1.3), "B": dict(floor=1.02),
           "E": dict(autograd=cnn.TARGET), "P": dict(autograd=1.5)}
WORKLOADS = "A,B,C,D,E,P"          # the default set
MB = 1024 * 1024


def machine() -> str:
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os
    return (f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def _verdict(value: float, limit: float) -> str:
    return f"{'met' if value <= limit else 'NOT met'} ({value:.2f} vs <= {limit})"


def training(workload, repeats: int, threads: int, out) -> dict:
    """Time the three contestants on `workload`; print its table; return the ratios.

    The targets are judged on the medians ("x floor", "x autograd"). The ratio
    of the CPU times of this process and of the fastest runs ("best") are
    printed beside them: on a machine shared with other jobs they show how
    much of a median is other processes' doing.
    """
    torch.set_num_threads(threads)
    x, t = workload.data()
    weights = workload.initial_weights()
    setups = {name: (lambda s=setup: s(workload, weights, x, t)) for name, setup in CONTESTANTS.items()}
    # Cold runs in this order: the floor first takes the process's own warm-up (first kernel
    # calls), so that the engines' cold runs show their own start-up cost.
    order = ["floor", "torch.autograd", "tapegrad"]
    timings = alternate({name: setups[name] for name in order}, repeats)
    floor, autograd = timings["floor"], timings["torch.autograd"]
    out(f"\nworkload {workload.name}: {'-'.join(map(str, workload.widths))} "
        f"({', '.join(workload.activations)}), batch {workload.batch_size}, {workload.epochs} "
        f"epochs of {workload.points} points; torch threads = {threads}; median of {repeats} "
        "warm runs")
    out(f"  {'contestant':<16}{'cold s':>9}{'warm s':>9}{'x floor':>9}{'x autograd':>12}"
        f"{'cpu x floor':>13}{'best x floor':>14}{'best x autograd':>17}{'final loss':>12}")
    for name in ("tapegrad", "torch.autograd", "floor"):
        r = timings[name]
        out(f"  {name:<16}{r.cold:>9.3f}{r.median:>9.3f}{r.median / floor.median:>9.2f}"
            f"{r.median / autograd.median:>12.2f}{r.median_cpu / floor.median_cpu:>13.2f}"
            f"{r.best / floor.best:>14.2f}{r.best / autograd.best:>17.2f}{r.result:>12.5f}")
    ours = timings["tapegrad"]
    ratios = dict(floor=ours.median / floor.median, autograd=ours.median / autograd.median,
                  cpu_floor=ours.median_cpu / floor.median_cpu,
                  best_floor=ours.best / floor.best, best_autograd=ours.best / autograd.best,
                  autograd_floor=autograd.median / floor.median)
    target = TARGETS.get(workload.name, {})
    verdicts = [f"tapegrad <= {limit} x {'torch.autograd' if key == 'autograd' else key}: "
                f"{_verdict(ratios[key], limit)} (best runs: {ratios['best_' + key]:.2f})"
                for key, limit in target.items()]
    if verdicts:
        out("  target " + "; ".join(verdicts))
    return ratios


def chain_table(sizes, repeats: int, out) -> list:
    torch.set_num_threads(1)
    rows = chain.run(sizes, repeats)
    out("\nworkload C: chain of N tanh ops on 16 elements, record + sweep, torch threads = 1 "
        "(total time / total nodes)")
    out(f"  {'N':>8}{'record us':>11}{'sweep us':>10}{'total us':>10}{'x N=first':>11}"
        f"{'autograd us':>13}")
    first = rows[0]["per_node_us"]
    for row in rows:
        out(f"  {row['n']:>8}{row['record_us']:>11.2f}{row['sweep_us']:>10.2f}"
            f"{row['per_node_us']:>10.2f}{row['per_node_us'] / first:>11.2f}"
            f"{row['autograd_per_node_us']:>13.2f}")
    flat = rows[-1]["per_node_us"] / first
    out(f"  target per-node cost at N={rows[-1]['n']} <= 1.5 x N={rows[0]['n']}: "
        f"{_verdict(flat, 1.5)}")
    return rows


def memory_table(steps: int, peak_steps: int, out) -> dict:
    torch.set_num_threads(1)
    out(f"\nworkload D: memory (method: see benchmarks/memory.py)")
    g = memory.growth(steps=steps)
    first, last = g["samples"][0], g["samples"][-1]
    out(f"  {steps} training steps of A: RSS {first['rss'] / MB:.1f} MB at step {first['step']} -> "
        f"{last['rss'] / MB:.1f} MB at step {last['step']} ({g['rss_growth'] / MB:+.2f} MB); "
        f"live nodes {first['nodes']} -> {last['nodes']}; live tensors {first['tensors']} -> "
        f"{last['tensors']}")
    held = memory.held_after_sweep()
    out(f"  after one backward(): {held['holding_after']} of {held['nodes']} nodes still hold saved "
        f"tensors (before: {held['holding_before']}); {held['grads_left']} gathering gradients left")
    saved = memory.saved_bytes()
    out(f"  saved for backward, one step of B: tapegrad {saved['tapegrad'] / MB:.2f} MB, "
        f"torch.autograd {saved['autograd'] / MB:.2f} MB")
    peak = memory.peak(steps=peak_steps)
    out(f"  peak RSS increase over {peak_steps} steps of B (fresh process each): "
        + ", ".join(f"{name} {value / MB:.1f} MB" for name, value in peak.items()))
    no_growth = g["node_growth"] == 0 and g["tensor_growth"] <= 0 and g["rss_growth"] < 4 * MB
    out(f"  target no growth: {'met' if no_growth else 'NOT met'}; after a sweep nothing saved: "
        f"{'met' if held['holding_after'] == 0 else 'NOT met'}; peak <= torch.autograd's on B: "
        f"{'met' if peak['tapegrad'] <= peak['torch.autograd'] else 'NOT met'} "
        f"({peak['tapegrad'] / peak['torch.autograd']:.2f} x)")
    return dict(growth=g, held=held, saved=saved, peak=peak)


def pinn_table(steps: int, repeats: int, out) -> dict:
    result = pinn.run(steps=steps, repeats=repeats, threads=1)
    out(f"\nworkload P: the PINN of examples/pinn_poisson.py (u'' by two create_graph sweeps), "
        f"{steps} Adam steps, torch threads = 1, median of {repeats} warm runs")
    out(f"  tapegrad {result['tapegrad_s']:.3f} s, torch.autograd {result['autograd_s']:.3f} s: "
        f"{result['ratio']:.2f} x torch.autograd (best runs {result['best_ratio']:.2f}); final "
        f"losses {result['tapegrad_loss']:.6e} / {result['autograd_loss']:.6e}")
    limit = TARGETS["P"]["autograd"]
    out(f"  target tapegrad <= {limit} x torch.autograd: {_verdict(result['ratio'], limit)}")
    return result


def ddp_table(threads: int, repeats: int, out) -> None:
    if ddp is None or not hasattr(ddp, "run"):
        return
    wanted = dict(threads=threads, repeats=repeats, workload=WORKLOAD_B)
    accepted = inspect.signature(ddp.run).parameters
    result = ddp.run(**{k: v for k, v in wanted.items() if k in accepted})
    out("\n2-process data-parallel training on workload B (benchmarks/ddp.py)")
    items = result.items() if isinstance(result, dict) else [("result", result)]
    for key, value in items:
        out(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default=WORKLOADS,
                        help=f"comma-separated subset of {WORKLOADS}")
    parser.add_argument("--repeats", type=int, default=7, help="warm runs per contestant (median)")
    parser.add_argument("--threads", default=None,
                        help="comma-separated torch thread counts (default: 1 and torch's default)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args(argv)
    workloads = {w.strip().upper() for w in args.workloads.split(",") if w.strip()}
    default_threads = torch.get_num_threads()
    threads = ([int(n) for n in args.threads.split(",")] if args.threads
               else sorted({1, default_threads}))
    a, b, e, repeats = WORKLOAD_A, WORKLOAD_B, cnn.CNNWorkload(), args.repeats
    sizes, steps, peak_steps, pinn_steps = chain.SIZES, 10_000, 10, 200
    if args.quick:
        a = dataclasses.replace(a, epochs=5)
        b = dataclasses.replace(b, epochs=1, points=2000)
        e = dataclasses.replace(e, epochs=1)
        repeats, sizes, steps, peak_steps, pinn_steps = min(repeats, 3), (1_000, 10_000), 2_000, 2, 20

    out = print
    out(f"tapegrad benchmarks, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    out(f"machine: {machine()}")
    out(f"command: python -m benchmarks {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    for n in threads:
        if "A" in workloads:
            training(a, repeats, n, out)
        if "B" in workloads:
            training(b, max(3, repeats // 2), n, out)
            ddp_table(n, max(3, repeats // 2), out)
        if "E" in workloads:
            cnn.run(e, repeats, n, out=out)     # its table and target line
    if "C" in workloads:
        chain_table(sizes, 3, out)
    if "D" in workloads:
        memory_table(steps, peak_steps, out)
    if "P" in workloads:
        pinn_table(pinn_steps, repeats, out)
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
