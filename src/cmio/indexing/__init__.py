"""Write-time index extraction driven by the R4 definitions."""

from cmio.indexing.compartments import CompartmentIndexer, compartment_paths

__all__ = ["CompartmentIndexer", "compartment_paths"]
