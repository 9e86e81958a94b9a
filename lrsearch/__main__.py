"""``python -m lrsearch``."""

from lrsearch.cli import run

run()
