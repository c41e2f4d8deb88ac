"""How a page module plugs into the web app: its navigation entries and its routes.

A page module is any object with ``nav`` (a sequence of :class:`NavItem`) and
``routes(ctx) -> list[Route]``; :func:`cmio.web.app.create_web_app` lists them
explicitly (no registry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cmio.web.context import Viewer, WebContext

__all__ = ["ALL_STAFF", "OVERSIGHT", "PATIENT_DATA", "WORKBENCH", "NavItem", "PageModule"]

OVERSIGHT = ("executive", "administrator", "informaticist", "analyst")
"""Who sees aggregate oversight pages (the CMIO works as administrator or informaticist)."""
PATIENT_DATA = ("clinician", "administrator", "informaticist", "analyst")
"""Who may open patient-level lists and charts (further limited by their scopes)."""
WORKBENCH = ("informaticist", "administrator", "integration-engineer")
"""The informatics team's tools."""
ALL_STAFF = (
    "clinician",
    "informaticist",
    "analyst",
    "integration-engineer",
    "executive",
    "administrator",
    "privacy-officer",
)


@dataclass(frozen=True, slots=True)
class NavItem:
    """One entry of the main navigation.

    Attributes:
        label: the link text. path: where it goes. group: the menu it sits in
            (``Oversight``, ``Care``, ``Workbench``, ``Reports``). roles: who sees it.
    """

    label: str
    path: str
    group: str
    roles: tuple[str, ...]

    def visible_to(self, viewer: Viewer) -> bool:
        """Whether the viewer's roles include one of the entry's roles."""
        return viewer.has_role(*self.roles)


class PageModule(Protocol):
    """A module of pages: navigation entries and routes."""

    @property
    def nav(self) -> Sequence[NavItem]:
        """The module's navigation entries (a module attribute ``nav = (NavItem(...),)``)."""
        ...

    def routes(self, ctx: WebContext) -> list[Any]:
        """The Starlette routes of the module's pages."""
        ...
