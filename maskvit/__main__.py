"""`python -m maskvit` (and `torchrun -m maskvit`) runs the CLI."""

import sys

from maskvit.cli import main

sys.exit(main())
