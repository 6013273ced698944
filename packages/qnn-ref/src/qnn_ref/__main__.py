"""``python -m qnn_ref``: the same as the ``qnn-ref`` command."""

import sys

from .cli import main

sys.exit(main())
