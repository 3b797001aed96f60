"""The `barque` command line (main.py)."""

import gc

# A command's start makes ~20k objects that live until it ends (modules, classes, functions):
# at the default threshold (700 allocations) the collector walks them ~25 times for nothing,
# ~2-3 ms of every command's CPU. A higher one still collects the cycles of a long command
# (pull, logs -f), only less often.
gc.set_threshold(50_000, *gc.get_threshold()[1:])
