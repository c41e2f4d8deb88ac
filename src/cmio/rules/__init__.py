"""Data-quality and standards rules: FHIRPath rules with severity and scope, stored as
governed ``Library`` resources, evaluated on write and in batch (``cmio rules run``).

See ``docs/governance.md`` and :mod:`cmio.rules.definition` for the rule profile.
"""

from cmio.rules.batch import (
    FINDINGS_COLUMNS,
    findings_schema,
    findings_table,
    run_rules,
    write_findings,
)
from cmio.rules.catalog import FINDING_TAG, WriteRules, active_artifacts, active_rules, annotate
from cmio.rules.definition import (
    RULE_KIND,
    Rule,
    RuleError,
    TerminologyCheck,
    rule_as_library,
    rule_from_json,
    rule_of_library,
)
from cmio.rules.engine import Finding, RuleEngine
from cmio.rules.starter import install_libraries, install_starter_rules, starter_rules

__all__ = [
    "FINDINGS_COLUMNS",
    "FINDING_TAG",
    "RULE_KIND",
    "Finding",
    "Rule",
    "RuleEngine",
    "RuleError",
    "TerminologyCheck",
    "WriteRules",
    "active_artifacts",
    "active_rules",
    "annotate",
    "findings_schema",
    "findings_table",
    "install_libraries",
    "install_starter_rules",
    "rule_as_library",
    "rule_from_json",
    "rule_of_library",
    "run_rules",
    "starter_rules",
    "write_findings",
]
