"""``python -m trilane``: the same as the ``trilane`` command."""

import sys

from ._cli import main

sys.exit(main())
