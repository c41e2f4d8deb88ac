"""Synthetic health system generator.

``generate(SynthConfig(patients, out))`` writes a whole health system — the
organization, hospitals and clinics, departments, clinicians with schedules,
payers — and patients with realistic demographics and longitudinal care driven by
disease models, the clinicians' EHR audit trail (IHE BALP-shaped AuditEvents,
https://profiles.ihe.net/ITI/BALP/) and claims, as FHIR R4 Bulk Data NDJSON
(https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html) or transaction Bundles,
plus a vendor-style audit log CSV. Same seed, same bytes::

    from pathlib import Path
    from cmio.synth import SynthConfig, generate

    summary = generate(SynthConfig(patients=500, out=Path("synth-out"), years=1, seed=7))
"""

from cmio.synth.generate import DEFAULT_END, SynthConfig, SynthSummary, generate

__all__ = ["DEFAULT_END", "SynthConfig", "SynthSummary", "generate"]
