"""The FHIR R4 type model: types, elements, search parameters and compartments.

Built from the official hl7.fhir.r4.core 4.0.1 package
(https://hl7.org/fhir/R4/downloads.html) and cached on disk::

    from cmio.model import load_model

    model = load_model()
    model.types["Patient"].elements["birthDate"].types  # ('date',)
    model.search_params_for("Patient")["birthdate"].type  # 'date'
"""

from cmio.model.cache import load_model
from cmio.model.types import (
    CompartmentDef,
    ElementDef,
    JsonProperty,
    Model,
    SearchParamDef,
    TypeDef,
)

__all__ = [
    "CompartmentDef",
    "ElementDef",
    "JsonProperty",
    "Model",
    "SearchParamDef",
    "TypeDef",
    "load_model",
]
