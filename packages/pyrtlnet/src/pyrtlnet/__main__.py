"""``python -m pyrtlnet``: the same as the ``pyrtlnet`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # worker processes (--jobs) import this module again
    sys.exit(main())
