"""`python -m ccc` is the same as the `ccc` console script."""

import sys

from ccc.cli import main

sys.exit(main())
