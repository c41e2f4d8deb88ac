"""Validation of FHIR R4 resources.

``validate_structure`` checks a parsed JSON resource against the base R4
definitions (https://hl7.org/fhir/R4/validation.html, structure level)::

    from cmio.model import load_model
    from cmio.validation import validate_structure

    issues = validate_structure(load_model(), {"resourceType": "Patient", "birthDate": "1970"})
"""

from cmio.validation.structural import Issue, validate_structure

__all__ = ["Issue", "validate_structure"]
