"""trilane's kernel: policies, clocks, stats, errors and the loop.  Imports nothing above it."""
