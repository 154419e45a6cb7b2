"""``python -m qackage``."""

from qackage.cli.main import entry_point

entry_point()
