"""cmio.cli."""
