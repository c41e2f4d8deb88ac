"""cmio.bulk."""
