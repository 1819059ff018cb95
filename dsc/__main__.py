"""``python -m dsc``, the same as the ``dsc`` command: see :mod:`dsc.cli`."""

import sys

from dsc.cli import main

sys.exit(main())
