"""The ``cmio`` command line (typer)."""

from __future__ import annotations

import typer

from cmio.cli import (
    audit_cmd,
    backup_cmd,
    demo_cmd,
    doctor_cmd,
    export_cmd,
    fhirpath_cmd,
    governance_cmd,
    hl7_cmd,
    hl7v2_feed_cmd,
    import_cmd,
    measures_cmd,
    migrate_cmd,
    oversight_cmd,
    reindex_cmd,
    report_cmd,
    rules_cmd,
    serve_cmd,
    synth_cmd,
    terminology_cmd,
    user_cmd,
    validate_cmd,
    view_cmd,
    view_materialize_cmd,
)

__all__ = ["app", "main"]

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="cmio: clinical informatics platform"
)


@app.callback()
def _root() -> None:
    """cmio: the organization's FHIR R4 patient database, vocabulary, integration and oversight."""


demo_cmd.register(app)
serve_cmd.register(app)
import_cmd.register(app)
export_cmd.register(app)
fhirpath_cmd.register(app)
synth_cmd.register(app)
hl7v2_feed_cmd.register(app)
hl7_cmd.register(app)
validate_cmd.register(app)
terminology_cmd.register(app)
reindex_cmd.register(app)
view_cmd.register(app)
view_materialize_cmd.register(app)
measures_cmd.register(app)
audit_cmd.register(app)
user_cmd.register(app)
oversight_cmd.register(app)
rules_cmd.register(app)
governance_cmd.register(app)
backup_cmd.register(app)
doctor_cmd.register(app)
migrate_cmd.register(app)
report_cmd.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
