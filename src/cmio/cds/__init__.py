"""CDS Hooks 2.0 services (https://cds-hooks.hl7.org/2.0/): governed service definitions,
prefetch, the starter logic and card feedback. The HTTP endpoints are in
:mod:`cmio.api.cds_hooks`; see ``docs/governance.md``.
"""

from cmio.cds.cards import action, card
from cmio.cds.definitions import (
    HOOKS,
    CdsService,
    active_services,
    install_starter_services,
    service_as_library,
    service_from_json,
    starter_services,
)
from cmio.cds.feedback import FeedbackError, feedback_rates, parse_feedback, store_feedback
from cmio.cds.logic import LOGIC, HookInput
from cmio.cds.prefetch import HttpFetcher, PrefetchError, render, resolve_prefetch

__all__ = [
    "HOOKS",
    "LOGIC",
    "CdsService",
    "FeedbackError",
    "HookInput",
    "HttpFetcher",
    "PrefetchError",
    "action",
    "active_services",
    "card",
    "feedback_rates",
    "install_starter_services",
    "parse_feedback",
    "render",
    "resolve_prefetch",
    "service_as_library",
    "service_from_json",
    "starter_services",
    "store_feedback",
]
