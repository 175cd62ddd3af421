"""Pool test helpers: worker processes import _tasks from this folder."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # so worker processes can import _tasks
