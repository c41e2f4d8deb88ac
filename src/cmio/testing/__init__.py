"""Helpers for tests and benchmarks (throwaway database servers)."""

__all__: list[str] = []
