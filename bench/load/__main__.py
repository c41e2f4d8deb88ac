"""``python -m bench.load``: the load test (:func:`bench.load.run.main`)."""

import sys

from bench.load.run import main

sys.exit(main())
