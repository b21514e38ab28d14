"""``python -m gridkit.cli``: the same as the ``gridkit`` command."""

import sys

from gridkit.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
