"""Tests of cmio.terminology."""
