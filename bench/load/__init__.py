"""Load harness for a running cmio server (issue 13, item 1): see :mod:`bench.load.run`."""
