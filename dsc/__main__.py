"""``python -m dsc``: see :mod:`dsc.cli`."""

import sys

from dsc.cli import main

sys.exit(main())
