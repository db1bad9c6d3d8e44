"""The RoboDesk planning table: `python benchmarks/robodesk_plan_table.py OUT [--json FILE]`.

The merging lives in `maskvit.bench.plan_table` (tested there); this is its command line."""

import sys

from maskvit.bench.plan_table import main

if __name__ == "__main__":
    sys.exit(main())
