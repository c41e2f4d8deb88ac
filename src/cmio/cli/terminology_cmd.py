"""``cmio terminology load|list``: terminology content into the concept store and FHIR store.

``cmio terminology load`` with no source loads the R4 core CodeSystems, ValueSets
and ConceptMaps, ICD-10-CM 2026 and UCUM; licensed releases a hospital holds are
named with their folder: ``loinc DIR``, ``snomed DIR``, ``rxnorm DIR``. Concepts go
into the concept store (``--terminology-db``), the resources into the FHIR store
(``--database``, large systems as ``content: not-present``). Re-running the same
release changes nothing (https://hl7.org/fhir/R4/terminology-service.html).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cmio.store import default_database_url

if TYPE_CHECKING:
    from rich.console import Console

    from cmio.store.base import Repository
    from cmio.terminology.concepts import ConceptStore, SystemInfo

__all__ = ["DEFAULT_SOURCES", "ensure_default_content", "load_sources", "parse_sources", "register"]

DEFAULT_SOURCES = ("core", "icd10cm", "ucum")
_WITH_FOLDER = ("loinc", "snomed", "rxnorm")
_PUBLISHERS = {
    "icd10cm": "National Center for Health Statistics (NCHS)",
    "ucum": "Regenstrief Institute, Inc.",
    "loinc": "Regenstrief Institute, Inc.",
    "snomed": "SNOMED International",
    "rxnorm": "National Library of Medicine",
}
_MARKER_SUFFIX = ".loaded.json"

Plan = list[tuple[str, Path | None]]


def parse_sources(words: list[str]) -> Plan:
    """Turn ``core icd10cm loinc DIR ...`` into (source, folder) steps.

    Raises:
        typer.BadParameter: an unknown source or a missing folder.
    """
    plan: Plan = []
    items = list(words) or list(DEFAULT_SOURCES)
    while items:
        name = items.pop(0).lower()
        if name in DEFAULT_SOURCES:
            plan.append((name, None))
        elif name in _WITH_FOLDER:
            if not items:
                raise typer.BadParameter(f"{name} needs the release folder: {name} DIR")
            folder = Path(items.pop(0))
            if not folder.is_dir():
                raise typer.BadParameter(f"{name}: {folder} is not a folder")
            plan.append((name, folder))
        else:
            raise typer.BadParameter(
                f"unknown source {name!r}: use core, icd10cm, ucum, loinc DIR, snomed DIR, rxnorm DIR"
            )
    return plan


def _date(value: str) -> str:
    """YYYYMMDD or MMDDYYYY digits as a FHIR date."""
    if len(value) == 8 and value.isdigit():
        if value[:4] > "1900" and value[4:6] <= "12":
            return f"{value[:4]}-{value[4:6]}-{value[6:]}"
        return f"{value[4:]}-{value[:2]}-{value[2:4]}"
    return value


def _resource(source: str, info: SystemInfo, date: str) -> dict[str, Any]:
    from cmio.terminology.loaders.common import codesystem_resource

    publisher = _PUBLISHERS[source]
    if source == "snomed" and info.version and "/731000124108/" in info.version:
        publisher = "National Library of Medicine"
    return codesystem_resource(info, publisher=publisher, date=date)


def _step(
    source: str,
    folder: Path | None,
    store: ConceptStore,
    repository: Repository | None,
    progress: Callable[[int], None],
    force: bool,
    options: dict[str, Any],
) -> str:
    from cmio.terminology.loaders import common

    resources: list[dict[str, Any]] = []
    if source == "core":
        from cmio.terminology.loaders.core import load_core

        results, written = load_core(store, repository, progress)
        loaded = sum(not r.skipped for r in results)
        return f"{len(results)} code systems ({loaded} loaded, {len(results) - loaded} unchanged), {written} resources"
    if source == "icd10cm":
        from cmio.terminology.loaders.icd10cm import icd10cm_info, load_icd10cm

        result = load_icd10cm(store, progress, force=force)
        info = icd10cm_info()
        info = type(info)(
            info.url, info.version, info.name, info.title, result.count, info.properties
        )
        resources.append(_resource(source, info, "2026-04-01"))
    elif source == "ucum":
        from cmio.terminology.loaders.ucum_units import load_ucum

        result, info = load_ucum(store, progress, force=force)
        resources.append(_resource(source, info, "2024-06-17"))
    elif source == "loinc":
        from cmio.terminology.loaders.loinc import find_release, load_loinc

        assert folder is not None
        result, info = load_loinc(store, folder, progress=progress, force=force)
        table = find_release(folder).table
        date = datetime.fromtimestamp(table.stat().st_mtime, UTC).date().isoformat()
        resources.append(_resource(source, info, date))
    elif source == "snomed":
        from cmio.terminology.loaders.snomed import load_snomed

        assert folder is not None
        result, info = load_snomed(
            store, folder, module=options.get("snomed_module"), progress=progress, force=force
        )
        resources.append(_resource(source, info, _date((info.version or "").rsplit("/", 1)[-1])))
    else:
        from cmio.terminology.loaders.rxnorm import load_rxnorm

        assert folder is not None
        result, info = load_rxnorm(store, folder, progress=progress, force=force)
        resources.append(_resource(source, info, _date(info.version or "")))
    if repository is not None:
        common.put_resources(repository, resources)
    state = "unchanged" if result.skipped else "loaded"
    return f"{result.url} {result.version}: {result.count:,} concepts ({state})"


def load_sources(
    plan: Plan,
    terminology_db: Path,
    database_url: str | None,
    console: Console,
    *,
    force: bool = False,
    options: dict[str, Any] | None = None,
) -> list[str]:
    """Run each step of ``plan`` with a progress bar; returns one summary line per step."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cmio.terminology.concepts import ConceptStore

    repository = None
    if database_url is not None:
        from cmio.indexing import SearchIndexer
        from cmio.model import load_model
        from cmio.store import open_repository

        repository = open_repository(database_url, indexer=SearchIndexer(load_model()))
    lines = []
    try:
        with ConceptStore(terminology_db) as store:
            for source, folder in plan:
                with Progress(
                    TextColumn(f"[bold]{source:<8}"),
                    BarColumn(bar_width=24),
                    TextColumn("{task.completed:>9,} items"),
                    TimeElapsedColumn(),
                    console=console,
                    transient=True,
                ) as bar:
                    task = bar.add_task(source, total=None)
                    line = _step(
                        source,
                        folder,
                        store,
                        repository,
                        lambda n, t=task: bar.update(t, completed=n),  # type: ignore[misc]
                        force,
                        options or {},
                    )
                console.print(f"{source:<8} {line}", soft_wrap=True)
                lines.append(line)
    finally:
        if repository is not None:
            repository.close()
    return lines


def ensure_default_content(terminology_db: Path, database_url: str, console: Console) -> bool:
    """Load core, ICD-10-CM and UCUM unless this store pair already has them (for ``cmio demo``).

    A marker file next to the concept store records what was loaded, so a second
    run costs a file read. Returns whether anything was loaded.
    """
    from importlib import metadata

    from cmio.model.package import file_sha256, find_package_tarball

    marker = terminology_db.with_name(terminology_db.name + _MARKER_SUFFIX)
    wanted = {
        "database": database_url,
        "core": file_sha256(find_package_tarball()),
        "icd10cm": metadata.version("simple-icd-10-cm"),
        "ucum": metadata.version("ucumvert"),
    }
    if marker.is_file() and terminology_db.is_file():
        try:
            if json.loads(marker.read_text()) == wanted:
                return False
        except ValueError:
            pass
    load_sources(parse_sources([]), terminology_db, database_url, console)
    marker.write_text(json.dumps(wanted, indent=2))
    return True


def register(app: typer.Typer) -> None:
    """Add ``cmio terminology`` to the application."""
    group = typer.Typer(
        no_args_is_help=True, help="Terminology content: load code systems, list them"
    )
    app.add_typer(group, name="terminology")

    @group.command("load")
    def load(
        sources: Annotated[
            list[str] | None,
            typer.Argument(
                help="core | icd10cm | ucum | loinc DIR | snomed DIR | rxnorm DIR"
                " (default: core icd10cm ucum)"
            ),
        ] = None,
        database: Annotated[
            str | None, typer.Option("--database", help="FHIR store URL (default as cmio serve)")
        ] = None,
        terminology_db: Annotated[
            Path, typer.Option("--terminology-db", help="Concept store file")
        ] = Path("cmio-data/terminology.db"),
        no_resources: Annotated[
            bool, typer.Option("--no-resources", help="Only the concept store, no FHIR resources")
        ] = False,
        force: Annotated[
            bool, typer.Option("--force", help="Reload even when the release is already loaded")
        ] = False,
        snomed_module: Annotated[
            str | None,
            typer.Option(
                "--snomed-module", help="SNOMED CT edition module id (default: from file names)"
            ),
        ] = None,
    ) -> None:
        """Load terminology content (idempotent: the same release again changes nothing)."""
        from rich.console import Console

        plan = parse_sources(sources or [])
        database_url = None if no_resources else (database or default_database_url())
        try:
            load_sources(
                plan,
                terminology_db,
                database_url,
                Console(stderr=True),
                force=force,
                options={"snomed_module": snomed_module},
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc

    @group.command("list")
    def list_(
        terminology_db: Annotated[
            Path, typer.Option("--terminology-db", help="Concept store file")
        ] = Path("cmio-data/terminology.db"),
        show_all: Annotated[
            bool, typer.Option("--all", help="Also list systems under 500 concepts")
        ] = False,
    ) -> None:
        """Show the code systems in the concept store (url, version, concepts)."""
        from rich.console import Console
        from rich.table import Table

        from cmio.terminology.concepts import ConceptStore

        if not terminology_db.is_file():
            raise typer.BadParameter(f"{terminology_db} does not exist: run cmio terminology load")
        table = Table("url", "version", "concepts", "title")
        for column in table.columns:
            column.overflow = "fold"
        with ConceptStore(terminology_db) as store:
            systems = store.systems()
        shown = [s for s in systems if show_all or s.count >= 500]
        for info in shown:
            table.add_row(info.url, info.version or "", f"{info.count:,}", info.title or "")
        console = Console()
        console.print(table)
        hidden = len(systems) - len(shown)
        more = f" ({hidden} with fewer than 500 concepts not shown: --all)" if hidden else ""
        console.print(f"{len(systems)} code system versions{more}")
