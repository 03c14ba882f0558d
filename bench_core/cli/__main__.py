"""`python -m bench_core.cli`: the same as the `bench` console script."""
import sys

from . import main

sys.exit(main())
