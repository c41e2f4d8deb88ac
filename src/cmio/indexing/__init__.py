"""Search-index extraction (https://hl7.org/fhir/R4/search.html).

:class:`SearchIndexer` indexes every standard search parameter plus the
Patient-compartment rows; the server and bulk import use it. The
compartment-only extractor stays in :mod:`cmio.indexing.compartments`.
"""

from cmio.indexing.compartments import CompartmentIndexer, compartment_paths
from cmio.indexing.extract import SearchIndexer

__all__ = ["CompartmentIndexer", "SearchIndexer", "compartment_paths"]
