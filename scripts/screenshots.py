"""Screenshots of every page of the web app, for docs/screenshots/ and the README.

Starts a site (a fresh synthetic health system by default, or the store of a
``cmio demo`` data folder), signs in as a role allowed on each page, and saves a
1280x800 full-page PNG per page (JPEG quality 80 when the PNG is over the size cap),
plus the first drill-down page linked from each (a measure, a patient chart ...).

Usage::

    python scripts/screenshots.py [--data-dir cmio-data] [--out docs/screenshots]
        [--patients 80] [--max-kb 300]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from cmio.api.env import Settings
from cmio.testing.browser import launch, login, open_page
from cmio.testing.web import WebSite, build_store

GROUP_ROLES = {
    "Oversight": "executive",
    "Care": "clinician",
    "Workbench": "informaticist",
    "Reports": "executive",
}
"""Who a page of each navigation group is shown as (when the page admits that role)."""

FALLBACK_ROLES = ("administrator", "informaticist", "analyst", "clinician", "executive")


def slug(path: str) -> str:
    """``/workbench/data-quality`` -> ``workbench-data-quality``; ``/`` -> ``home``."""
    text = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
    return text or "home"


def role_for(group: str, roles: tuple[str, ...], available: dict[str, tuple[str, str]]) -> str:
    """The role to sign in as for a page of ``group`` open to ``roles``."""
    for role in (GROUP_ROLES.get(group, ""), *roles, *FALLBACK_ROLES):
        if role in roles and role in available:
            return role
    raise LookupError(f"no test user for any of {roles}")


def shoot(page: Page, out: Path, name: str, max_kb: int) -> Path:
    """Save the full page as PNG, else as JPEG quality 80, else the top of the page
    (3200, 2400, 1600 or 800 px tall), whichever first fits in ``max_kb``."""
    for old in out.glob(f"{name}.*"):
        old.unlink()
    width = page.viewport_size["width"] if page.viewport_size else 1280
    for height in (None, 3200, 2400, 1600, 800):
        clip = None if height is None else {"x": 0, "y": 0, "width": width, "height": height}
        for kind in ("png", "jpeg"):
            path = out / f"{name}.{'png' if kind == 'png' else 'jpg'}"
            options: dict[str, Any] = {"path": str(path), "full_page": True, "clip": clip}
            if kind == "jpeg":
                options.update(type="jpeg", quality=80)
            page.screenshot(**options)
            if path.stat().st_size <= max_kb * 1024:
                return path
            path.unlink()
    raise RuntimeError(f"{name}: no screenshot fits in {max_kb} KB")


def _drill_link(page: Page, base: str) -> str | None:
    """The first link on the page to a page below ``base`` (a measure, a patient ...)."""
    for href in page.eval_on_selector_all(
        "main a[href]", "links => links.map(a => a.getAttribute('href'))"
    ):
        if not isinstance(href, str) or not href.startswith(base + "/"):
            continue
        if not href.split("?", 1)[0].endswith((".pdf", ".html", ".json")):
            return href
    return None


def capture(site: WebSite, browser: Browser, out: Path, max_kb: int) -> list[tuple[str, Path]]:
    """Screenshot every navigation page (and one drill-down below each) as its role."""
    out.mkdir(parents=True, exist_ok=True)
    pages: list[tuple[str, str, str]] = [("home", "/", "analyst")]
    for item in site.app.web.ctx.nav:
        pages.append((slug(item.path), item.path, role_for(item.group, item.roles, site.users)))
    saved: list[tuple[str, Path]] = []
    contexts: dict[str, Page] = {}
    for name, path, role in pages:
        page = contexts.get(role)
        if page is None:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            login(page, site.url, *site.users[role])
            contexts[role] = page
        open_page(page, site.url + path, timeout_ms=600_000)
        saved.append((f"{path} as {role}", shoot(page, out, name, max_kb)))
        print(f"{path} ({role}) -> {saved[-1][1]}", flush=True)
        below = _drill_link(page, path) if path != "/" else None
        if below is not None:
            open_page(page, site.url + below, timeout_ms=600_000)
            saved.append((f"{below} as {role}", shoot(page, out, f"{name}-detail", max_kb)))
            print(f"{below} ({role}) -> {saved[-1][1]}", flush=True)
    return saved


def main(argv: list[str] | None = None) -> int:
    """Run the script (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a 'cmio demo' data folder")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--patients", type=int, default=80, help="synthetic patients")
    parser.add_argument("--max-kb", type=int, default=300, help="PNG size cap")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cmio-shots-") as tmp:
        work = Path(tmp)
        settings = Settings(validation="off", terminology_db=None)
        if args.data_dir is not None:
            data_dir = args.data_dir.resolve()
            url = f"sqlite:///{data_dir / 'cmio.db'}"
            settings = Settings(
                validation="off",
                terminology_db=str(data_dir / "terminology.db"),
                hl7_journal=str(data_dir / "hl7" / "journal.db"),
            )
        else:
            url = build_store(work / "site", patients=args.patients)
        with (
            WebSite.start(url, work / "keys", settings=settings) as site,
            sync_playwright() as playwright,
        ):
            browser = launch(playwright)
            try:
                saved = capture(site, browser, args.out, args.max_kb)
            finally:
                browser.close()
    print(f"{len(saved)} screenshots in {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
