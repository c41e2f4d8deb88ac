"""Security: who may do what (SMART on FHIR), audit, de-identification.

Layer 5: imports the store and below, never the API.
"""

from cmio.security.grant import AccessGrant, SubjectKind

__all__ = ["AccessGrant", "SubjectKind"]
