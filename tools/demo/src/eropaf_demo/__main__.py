"""`python -m eropaf_demo [--seed N] [--signals N] [--keep] ...`: what `make demo` runs."""

import sys

from eropaf_demo.cli import demo_main

sys.exit(demo_main())
