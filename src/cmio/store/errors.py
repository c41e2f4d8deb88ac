"""The storage errors the REST layer turns into OperationOutcomes (HTTP 400, 404, 409,
410, 412, 507): https://hl7.org/fhir/R4/http.html. Re-exported by :mod:`cmio.store.base`.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "GoneError",
    "InvalidRequestError",
    "NotFoundError",
    "StorageFullError",
    "StoreError",
    "VersionConflictError",
]


class StoreError(Exception):
    """Base class for storage errors the REST layer turns into OperationOutcomes."""


class NotFoundError(StoreError):
    """The resource (or version) does not exist."""


class GoneError(StoreError):
    """The resource existed and was deleted (R4 read answers 410)."""


class VersionConflictError(StoreError):
    """``If-Match`` named a version other than the current one (HTTP 412)."""


class ConflictError(StoreError):
    """A write conflicts with stored state (HTTP 409)."""


class StorageFullError(StoreError):
    """The database's disk is full: nothing of the write was stored (HTTP 507)."""


class InvalidRequestError(StoreError):
    """The request is malformed (HTTP 400): an invalid id, an unparseable date, or an
    unsupported search modifier, prefix or sort key."""
