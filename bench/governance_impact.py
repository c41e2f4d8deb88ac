"""Cost of the impact analysis (issue 11, item 2) on a synthetic store, beside what it
repeats: a value-set change against one run of the measure using it (CMS122), a rule
change against one batch run of the rule.

The store is ``cmio synth --patients N`` imported into SQLite (kept in ``--db`` and
reused); the value-set change drops two diabetes codes from the Diabetes value set the
measures ship with and adds one; the rule change edits the starter ``lab-loinc`` rule (a
local code system required instead of LOINC, so every laboratory result in the window
starts firing). Runs alternate baseline / analysis so machine noise hits both; medians
and ratios are printed.

    python bench/governance_impact.py [--patients 300] [--runs 3] [--db bench/out/impact.db]
        [--today 2025-12-31]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cmio.governance.impact import ImpactAnalyzer
from cmio.governance.lifecycle import set_state
from cmio.indexing import SearchIndexer
from cmio.measures import Period, builtin_measures, evaluate_measures
from cmio.measures.valuesets import builtin_valuesets
from cmio.model import Model, load_model
from cmio.rules import RuleEngine, install_starter_rules, rule_as_library, run_rules
from cmio.rules.starter import starter_rules
from cmio.store import open_repository
from cmio.store.base import Repository
from cmio.terminology.factory import open_terminology


def _prepare(db: Path, patients: int, model: Model) -> None:
    from cmio.bulk.importer import import_paths

    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "cmio", "synth", "--patients", str(patients), "--out", folder],
            check=True,
            capture_output=True,
        )
        db.parent.mkdir(parents=True, exist_ok=True)
        import_paths(f"sqlite:///{db}", [folder], model=model)
    repository = open_repository(f"sqlite:///{db}", indexer=SearchIndexer(model))
    install_starter_rules(repository)
    repository.close()


def _drafts(repository: Repository) -> None:
    """The proposed versions (drafts: rewritten on every run)."""
    diabetes = dict(builtin_valuesets()["Diabetes"])
    diabetes.update(id="dm-2", version="cmio-2026.2")
    includes = []
    for include in diabetes["compose"]["include"]:
        kept = [c for c in include["concept"] if c["code"] not in ("E11.9", "44054006")]
        includes.append({**include, "concept": kept})
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    includes.append({"system": icd, "concept": [{"code": "E11.69"}]})
    diabetes["compose"] = {"include": includes}
    set_state(diabetes, "draft")
    [lab] = [r for r in starter_rules("draft") if r.id == "lab-loinc"]
    changed = lab.to_json()  # a local lab code system accepted instead of LOINC
    changed["terminology"]["systems"] = ["https://example.org/fhir/CodeSystem/local-labs"]
    from cmio.rules import rule_from_json

    library = rule_as_library(rule_from_json(changed, version="1.1.0", status="draft"))
    set_state(library, "draft")
    with repository.transaction() as tx:
        tx.update(diabetes)
        tx.update(library)


def _timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, default=Path("bench/out/impact.db"))
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=date(2025, 12, 31),
        help="The analysis date (default: the last day of the synthetic data)",
    )
    args = parser.parse_args()
    model = load_model()
    if not args.db.exists():
        _prepare(args.db, args.patients, model)
    repository: Repository = open_repository(f"sqlite:///{args.db}", indexer=SearchIndexer(model))
    _drafts(repository)
    terminology = open_terminology(repository, None, core=False)
    today: date = args.today
    period = Period(today - timedelta(days=364), today)
    analyzer = ImpactAnalyzer(repository, model, terminology, today=lambda: today)
    from cmio.fhirpath import FhirPathEngine
    from cmio.rules import active_rules

    [lab] = [r for r in active_rules(repository) if r.id == "lab-loinc"]
    engine = RuleEngine(FhirPathEngine(model))
    cms122 = builtin_measures()["CMS122"]
    times: dict[str, list[float]] = {k: [] for k in ("measure", "vs", "batch", "rule")}
    summaries: dict[str, str] = {}
    for _ in range(args.runs):
        times["measure"].append(
            _timed(lambda: evaluate_measures([cms122], period, repository, terminology=terminology))
        )
        times["vs"].append(
            _timed(lambda: summaries.update(vs=analyzer.analyze("ValueSet", "dm-2").summary()))
        )
        times["batch"].append(_timed(lambda: run_rules(repository, engine, [lab])))
        times["rule"].append(
            _timed(
                lambda: summaries.update(
                    rule=analyzer.analyze("Library", "lab-loinc-1-1-0", days=90).summary()
                )
            )
        )
    repository.close()
    median = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"runs": times, "median": median, "summaries": summaries}, indent=1))
    print(f"today {today}, measurement period {period.start}/{period.end}, rule window 90 days")
    print(
        f"value-set impact {median['vs']:.2f} s = {median['vs'] / median['measure']:.2f} x one "
        f"CMS122 run ({median['measure']:.2f} s); rule impact {median['rule']:.2f} s = "
        f"{median['rule'] / median['batch']:.2f} x one batch run ({median['batch']:.2f} s)"
    )


if __name__ == "__main__":
    main()
