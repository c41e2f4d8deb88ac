"""Bulk data: import of Bundles/NDJSON and Bulk Data NDJSON export.

* :func:`cmio.bulk.importer.import_paths` loads transaction/batch/collection
  Bundles and NDJSON files (https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format).
* :func:`cmio.bulk.exporter.export_ndjson` writes ``Type.ndjson`` files.
* :class:`cmio.bulk.jobs.ExportJobs` runs ``$export`` jobs in the background.

Import the submodules directly; this package module stays cheap to import.
"""

__all__: list[str] = []
