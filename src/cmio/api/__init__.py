"""cmio.api."""
