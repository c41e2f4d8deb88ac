"""Search-index extraction (https://hl7.org/fhir/R4/search.html).

:class:`SearchIndexer` indexes every standard search parameter plus the
Patient-compartment rows. ``CompartmentIndexer`` is exported here as that full
indexer, so the server and bulk import (which build ``CompartmentIndexer(model)``)
index everything; the compartment-only extractor stays in
:mod:`cmio.indexing.compartments`.
"""

from cmio.indexing.compartments import compartment_paths
from cmio.indexing.extract import SearchIndexer

CompartmentIndexer = SearchIndexer

__all__ = ["CompartmentIndexer", "SearchIndexer", "compartment_paths"]
