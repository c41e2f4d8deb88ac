"""One module per FHIR interaction (https://hl7.org/fhir/R4/http.html)."""
