"""cmio.terminology: code systems, value sets and concept maps (issue 6).

See https://hl7.org/fhir/R4/terminology-service.html. The concept store
(:mod:`cmio.terminology.concepts`) holds the concepts of large code systems; the
loaders (:mod:`cmio.terminology.loaders`) fill it from the official releases.
"""
