"""tapegrad's benchmark suite: `python -m benchmarks` (see run.py for the flags).

Contestants run side by side in one process, on the same data and the same
initial weights, in alternating order; the table reports medians of the warm
runs and the cold first run apart. Correctness (not time) is tested in
tests/test_benchmarks.py.
"""
