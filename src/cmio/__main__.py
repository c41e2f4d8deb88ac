"""``python -m cmio``."""

from cmio.cli.main import main

main()
