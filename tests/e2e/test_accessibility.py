"""axe-core over every page of every role, at a desk and on a phone: no serious or critical problem.

One browser and one demo hub for the whole walk. Each role starts from its main menu, then opens
the first link of each kind of detail page or form the menu's pages lead to (an instrument, a loan,
each kind of borrower, a set, a set's check-in, a child...) up to two links away. A page already checked
for one role is not checked again for another.
"""
import re
from collections import defaultdict
from urllib.parse import urlsplit

from axe_playwright_python.sync_playwright import Axe

from loanservice.demo.seed import seed
from loanservice.extensions import db

from .conftest import sign_in

DESK = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True}

ROLES = [
    ("signed out", None, None),
    ("staff", "staff@demo.hub", "demo-staff-pass"),
    ("admin", "admin@demo.hub", "demo-admin-pass"),
    ("school", "school@demo.hub", "demo-school-pass"),
    ("parent", "parent@demo.hub", "demo-parent-pass"),
]

# Pages everyone can open without a link to them from the menu.
START = {"signed out": ["/", "/login", "/register", "/reset", "/catalogue"]}

# Kinds of page reached from the menu's pages: the first link of each kind is checked.
KINDS = [re.compile(pattern) for pattern in (
    r"^/instruments/(?!new$|import$|export)[A-Z0-9-]+$",
    r"^/instruments/[A-Z0-9-]+/(condition|edit|repair|missing|write-off|found)$",
    r"^/loans/\d+$", r"^/loans/\d+/(agreement|renew|check-in|exchange|lost|cancel)$",
    r"^/loans/(new|awaiting-agreement)$",
    r"^/borrowers/family/\d+$", r"^/borrowers/pupil/\d+$", r"^/borrowers/school/\d+$", r"^/borrowers/other/\d+$",
    r"^/borrowers/family/new$", r"^/borrowers/(family|pupil)/\d+/edit$", r"^/borrowers/family/\d+/pupils/new$",
    r"^/sets/\d+$", r"^/sets/new$", r"^/sets/\d+/edit$", r"^/set-loans/\d+/check-in$",
    r"^/instruments/(new|import)$", r"^/types/(new|\d+)$", r"^/labels/print$", r"^/labels/set/\d+$",
    r"^/scan/camera$", r"^/notices/stages$", r"^/notices/stages/\d+/edit$", r"^/mail$",
    r"^/admin/users/(new|\d+)$", r"^/admin/schools/\d+/edit$",
    r"^/children/(new|\d+)$", r"^/my-loans/\d+/ask$", r"^/reserve$", r"^/catalogue$",
    r"^/money/accounts/\d+$", r"^/money/accounts/\d+/(payment|refund|payer)$", r"^/money/invoices/\d+$",
    r"^/money/invoices/\d+/(credit|write-off)$", r"^/money/(aged-debt|invoice-run)$",
    r"^/reports/(data-return|asset-register|saved)$",
    r"^/bookings/\d+$", r"^/bookings/(new|free-sets|run-sheet|roll-over|store-calendar)$", r"^/sets/\d+/year$",
    r"^/money/terms/\d+/invoices$",
)]


def test_no_page_of_any_role_has_a_serious_or_critical_accessibility_problem(live_server, browser):
    with live_server.app.app_context():
        seed(db.session, instruments=160)
        db.session.commit()
        db.session.remove()
    walk = Walk(live_server.url)
    for role, email, password in ROLES:
        desk, phone = (walk.open(browser, live_server, sizes, email, password) for sizes in (DESK, PHONE))
        walk.menu_on_a_phone(phone, role)
        walk.pages_of(role, desk, phone, START.get(role, []))
        desk.context.close()
        phone.context.close()
    assert len(walk.checked) > 40, f"only {len(walk.checked)} pages were reached: {sorted(walk.checked)}"
    assert not walk.problems, (
        f"{len(walk.problems)} kinds of serious or critical problem on {len(walk.checked)} pages:\n"
        + "\n".join(f"- {rule}\n    " + "\n    ".join(where) for rule, where in sorted(walk.problems.items())))
    assert not walk.script_errors, f"JavaScript errors: {walk.script_errors}"


class Walk:
    """Pages checked so far, and what axe found on them."""

    def __init__(self, base: str):
        self.base = base
        self.axe = Axe()
        self.checked: set[str] = set()
        self.problems: dict[str, list[str]] = defaultdict(list)  # "rule (impact): help" -> where
        self.script_errors: list[str] = []

    def open(self, browser, server, sizes, email, password):
        context = browser.new_context(**sizes)
        page = context.new_page()
        page.on("pageerror", lambda error: self.script_errors.append(f"{page.url}: {error}"))
        if email:
            sign_in(page, server, email, password)
        return page

    def check(self, page, where: str) -> None:
        for violation in self.axe.run(page).response["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = [" ".join(node["target"]) for node in violation["nodes"]][:4]
                self.problems[f"{violation['id']} ({violation['impact']}): {violation['help']}"].append(
                    f"{where}: {', '.join(targets)}")

    def menu_on_a_phone(self, phone, role: str) -> None:
        """The phone's menu, opened."""
        phone.goto(self.base + "/")
        phone.get_by_role("button", name="Menu").click()
        self.check(phone, f"phone {phone.url.removeprefix(self.base)} with the menu open [{role}]")

    def pages_of(self, role: str, desk, phone, start: list[str]) -> None:
        """Check the role's pages at both sizes: its menu's, then the first of each kind of page
        those lead to, two steps deep."""
        desk.goto(self.base + "/")
        pages = list(dict.fromkeys(start + self.links(desk, "nav[aria-label=Main] a[href]")))
        seen_kinds: set[tuple[int, str]] = set()
        frontier = pages
        for depth in range(3):
            found = []
            for path in frontier:
                if depth == 2 and path in self.checked:
                    continue
                desk.goto(self.base + path)
                if path not in self.checked:
                    self.checked.add(path)
                    self.check(desk, f"desk {path} [{role}]")
                    phone.goto(self.base + path)
                    self.check(phone, f"phone {path} [{role}]")
                if depth == 2:
                    continue
                for link in self.links(desk, "main a[href]", with_query=True):
                    route = urlsplit(link).path
                    n = next((n for n, pattern in enumerate(KINDS) if pattern.match(route)), None)
                    kind = (n, re.sub(r"[A-Z]+-\d+|\d+", "#", route))  # /loans/#/renew, /instruments/#
                    if n is not None and kind not in seen_kinds and link not in pages:
                        seen_kinds.add(kind)
                        found.append(link)
                        pages.append(link)
            frontier = found

    def links(self, page, selector: str, with_query: bool = False) -> list[str]:
        """The addresses (from the path on) of this site's links that ``selector`` finds on the page."""
        paths = []
        for href in page.eval_on_selector_all(selector, "links => links.map(a => a.href)"):
            parts = urlsplit(href)
            if f"{parts.scheme}://{parts.netloc}" != self.base or (parts.query and not with_query):
                continue
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if path not in paths:
                paths.append(path)
        return paths
