"""``python -m gridkit.cli``: the same as the ``gridkit`` command."""

import sys

from gridkit.cli.app import main

sys.exit(main())
