"""Before and after: time this tree's tapegrad against another checkout's, side by side.

    python -m benchmarks.compare --baseline /path/to/old/checkout --workloads A,B --rounds 5

Each round starts one fresh process per tree, in alternating order; each
process times the tapegrad contestant and the raw-torch floor of a workload
(same data, same initial weights, one torch thread) and prints its medians.
The ratio of the two trees' "x floor" is the change in engine overhead with
the machine's drift divided out; the ratio of raw times is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(workload: str, repeats: int) -> None:
    """Run inside one tree: time tapegrad and the floor, print JSON."""
    import dataclasses

    import torch

    from benchmarks.contestants import CONTESTANTS, WORKLOAD_A, WORKLOAD_B
    from benchmarks.timing import alternate

    torch.set_num_threads(1)
    w = {"A": dataclasses.replace(WORKLOAD_A, epochs=20), "B": WORKLOAD_B}[workload]
    x, t = w.data()
    weights = w.initial_weights()
    setups = {
        name: (lambda s=CONTESTANTS[name]: s(w, weights, x, t)) for name in ("floor", "tapegrad")
    }
    timings = alternate(setups, repeats)
    print(json.dumps({name: r.median for name, r in timings.items()}))


def run_tree(tree: str, workload: str, repeats: int) -> dict:
    code = (
        "import sys; sys.argv = ['x']; from benchmarks.compare import child; "
        f"child({workload!r}, {repeats})"
    )
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--baseline", required=True, help="another checkout of tapegrad")
    parser.add_argument("--workloads", default="A,B")
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per tree")
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per process")
    args = parser.parse_args(argv)
    trees = {"baseline": os.path.abspath(args.baseline), "this tree": HERE}
    for workload in [w.strip().upper() for w in args.workloads.split(",") if w.strip()]:
        runs = {name: [] for name in trees}
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
            for name in order:
                runs[name].append(run_tree(trees[name], workload, args.repeats))
        print(f"workload {workload}: {args.rounds} rounds x {args.repeats} warm runs, one thread")
        summary = {}
        for name, results in runs.items():
            ours = statistics.median(r["tapegrad"] for r in results)
            x_floor = statistics.median(r["tapegrad"] / r["floor"] for r in results)
            summary[name] = (ours, x_floor)
            rounds = ", ".join(f"{r['tapegrad'] / r['floor']:.2f}" for r in results)
            print(
                f"  {name:<10} tapegrad {ours:.4f} s   x floor {x_floor:.3f}   "
                f"(per round: {rounds})"
            )
        (old, old_floor), (new, new_floor) = summary["baseline"], summary["this tree"]
        print(f"  this tree / baseline: time {new / old:.3f}, x floor {new_floor / old_floor:.3f}")


if __name__ == "__main__":
    main()
