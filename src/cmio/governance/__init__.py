"""Governed clinical content: lifecycle, approvals, diffs and change requests (issue 11).

See docs/governance.md, section "Lifecycle and change requests".
"""

from __future__ import annotations

from cmio.governance.diff import ArtifactDiff, Change, diff_artifacts, json_diff
from cmio.governance.lifecycle import (
    ACTIONS,
    GOVERNED_TYPES,
    LIFECYCLE_SYSTEM,
    STATES,
    Action,
    ApprovalPolicy,
    GovernanceError,
    State,
    canonical_of,
    state_of,
)
from cmio.governance.service import ACTION_SYSTEM, Decision, Governance, check_edit

__all__ = [
    "ACTIONS",
    "ACTION_SYSTEM",
    "GOVERNED_TYPES",
    "LIFECYCLE_SYSTEM",
    "STATES",
    "Action",
    "ApprovalPolicy",
    "ArtifactDiff",
    "Change",
    "Decision",
    "Governance",
    "GovernanceError",
    "State",
    "canonical_of",
    "check_edit",
    "diff_artifacts",
    "json_diff",
    "state_of",
]
