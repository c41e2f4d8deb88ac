"""How the CapabilityStatement announces SMART on FHIR
(https://hl7.org/fhir/smart-app-launch/conformance.html#declaring-support-for-oauth2-endpoints)."""

from __future__ import annotations

from typing import Any

__all__ = ["OAUTH_URIS", "rest_security"]

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def rest_security(origin: str) -> dict[str, Any]:
    """``CapabilityStatement.rest.security`` for the built-in server at ``origin``."""
    endpoints = ("authorize", "token", "introspect", "revoke")
    return {
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": name, "valueUri": f"{origin}/auth/{name}"} for name in endpoints
                ],
            }
        ],
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART-on-FHIR profile (see /.well-known/smart-configuration)",
            }
        ],
        "description": "Every interaction except metadata needs a bearer token "
        "(SMART App Launch v2 or Backend Services).",
    }
