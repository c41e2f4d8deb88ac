"""Tests of the terminology loaders."""
