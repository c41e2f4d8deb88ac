"""Tests of the benchmark harnesses in bench/ (the short smoke runs)."""
