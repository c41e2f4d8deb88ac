"""cmio: clinical informatics platform built on a FHIR R4 patient database."""

__all__ = ["__version__"]

__version__ = "0.1.0"
