"""The ``gridkit`` command line: one module per group of commands, thin over the library."""

from gridkit.cli.app import main

__all__ = ["main"]
