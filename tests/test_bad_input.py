"""Bad input anywhere gets a 4xx with a message, never a 500: every route of the app and every
form of every page (as each role, forms read from the pages) is sent a NUL byte, whole numbers
beyond the database's range, dates in year 1 and 9999, and line breaks in single-line fields."""
import re
from collections import deque
from urllib.parse import urlsplit

import pytest
from lxml import html as lxml_html
from werkzeug.datastructures import MultiDict

from .pages import read_form

BIG_INTS = ("2147483648", "99999999999999999999", "-2147483649")
BAD_DATES = ("0001-01-01", "9999-12-31")
NUL = "x\x00y"
ROLES = {
    "signed out": None,
    "admin": ("admin@demo.hub", "demo-admin-pass"),
    "staff": ("staff@demo.hub", "demo-staff-pass"),
    "school": ("school@demo.hub", "demo-school-pass"),
    "parent": ("parent@demo.hub", "demo-parent-pass"),
}
# Query arguments the pages read (filters, pagers, pre-filled forms).
QUERY_ARGS = ("page", "child", "item", "as_of", "q", "type", "size", "status", "location", "sort", "tag", "borrower",
              "who", "kind", "code", "then", "next", "role", "start", "stock", "selection", "fresh", "condition")
# Pages whose links are not followed and forms not posted: the walk must stay signed in.
LEAVE_ALONE = ("/logout",)
TEXT_KINDS = {"text", "search", "email", "password", "tel", "url", "textarea", "hidden", "number"}
PAGES_PER_ROLE = 160


@pytest.fixture
def demo_app(app):
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "40"])
    assert result.exit_code == 0, result.output
    return app


def client_as(app, role):
    client = app.test_client()
    if ROLES[role]:
        email, password = ROLES[role]
        page = client.get("/login")
        rendered = read_form(page.get_data(as_text=True), "/login")
        values = MultiDict(rendered.pairs)
        values.setlist("email", [email])
        values.setlist("password", [password])
        response = client.post(rendered.action, data=values)
        assert response.status_code == 302, f"{role} could not sign in"
    return client


def answer(client, method: str, url: str, **kw) -> int:
    """The status of a request; an exception the app let through counts as a 500."""
    try:
        response = client.open(url, method=method, **kw)
        response.close()
        return response.status_code
    except Exception:  # noqa: BLE001  (TESTING propagates what would have been a 500)
        return 500


def bad_path_values(converter: str) -> list[str]:
    if converter in ("int", "float"):
        return list(BIG_INTS)
    return [*BIG_INTS, "x%00y", "a%0Ab"]


def urls_for(rule) -> list[str]:
    """The rule's URL with each argument replaced by every bad value for its converter (one at a time)."""
    pattern = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
    args = pattern.findall(rule.rule)
    if not args:
        return [rule.rule]
    urls = []
    for n, (converter, _name) in enumerate(args):
        for bad in bad_path_values(converter or "default"):
            count = -1

            def substitute(match, n=n, bad=bad):
                nonlocal count
                count += 1
                return bad if count == n else "1"
            urls.append(pattern.sub(substitute, rule.rule))
    return urls


def test_every_route_refuses_bad_values_in_its_url_and_query_without_a_500(demo_app):
    failures = []
    for role in ROLES:
        client = client_as(demo_app, role)
        for rule in demo_app.url_map.iter_rules():
            if rule.endpoint == "static" or rule.rule in LEAVE_ALONE:
                continue
            methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            for url in urls_for(rule):
                for method in methods:
                    status = answer(client, method, url)
                    if status >= 500:
                        failures.append((role, method, url, status))
            if "GET" in methods:
                url = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?\w+>", "1", rule.rule)
                for bad in (*BIG_INTS, *BAD_DATES, NUL, "a\nb"):
                    status = answer(client, "GET", url, query_string={name: bad for name in QUERY_ARGS})
                    if status >= 500:
                        failures.append((role, "GET", f"{url}?...={bad!r}", status))
    assert not failures, "answered 500:\n" + "\n".join(map(str, failures))


def shape(url: str) -> str:
    """A URL with its numbers and tags generalised: one page of each kind is enough."""
    path = urlsplit(url).path
    return re.sub(r"\d+", "N", path)


def crawl(client) -> dict[str, str]:
    """The pages a role reaches by following links from its home page: {url: html}, one of each shape."""
    seen, pages, queue = set(), {}, deque(["/"])
    while queue and len(pages) < PAGES_PER_ROLE:
        url = queue.popleft()
        if shape(url) in seen:
            continue
        seen.add(shape(url))
        response = client.get(url, follow_redirects=True)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        page = response.get_data(as_text=True)
        url = response.request.path + (f"?{response.request.query_string.decode()}"
                                       if response.request.query_string else "")
        pages[url] = page
        for href in lxml_html.fromstring(page).xpath("//a/@href"):
            parts = urlsplit(href)
            if parts.netloc or not parts.path.startswith("/") or parts.path.startswith("/static/") \
                    or parts.path in LEAVE_ALONE or parts.path.endswith(".pdf"):
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return pages


def forms_of(pages: dict[str, str]):
    """Every form of the pages (read as the page renders it), once for each action and set of fields."""
    seen = set()
    for url, page in pages.items():
        main = lxml_html.fromstring(page).xpath("//main")
        for n in range(len(main[0].xpath(".//form")) if main else 0):
            rendered = read_form(page, url, n)
            key = (rendered.method, shape(rendered.action), tuple(sorted(rendered.names)))
            if key in seen or urlsplit(rendered.action).path in LEAVE_ALONE:
                continue
            seen.add(key)
            yield url, rendered


def variants(rendered):
    """(what, values): the form's rendered values with bad values typed into the fields they fit."""
    fields = [name for name in rendered.names if name != "csrf_token"]
    kinds = rendered.kinds

    def typed(names, value):
        pairs = [(n, value if n in names else v) for n, v in rendered.pairs]
        pairs += [(n, value) for n in names if n not in {p for p, _ in rendered.pairs}]
        return MultiDict(pairs)
    texts = [n for n in fields if kinds.get(n) in TEXT_KINDS]
    one_line = [n for n in fields if kinds.get(n) in TEXT_KINDS - {"textarea", "hidden", "number"}]
    dates = [n for n in fields if kinds.get(n) == "date"]
    if texts:
        yield "NUL", typed(texts, NUL)
    for big in BIG_INTS if fields else ():
        yield big, typed(fields, big)
    for bad in BAD_DATES if dates else ():
        yield bad, typed(dates, bad)
    if one_line:
        yield "line break", typed(one_line, "one\ntwo")


def test_every_form_of_every_page_refuses_bad_values_without_a_500(demo_app):
    failures, posted = [], 0
    for role in ROLES:
        client = client_as(demo_app, role)
        for url, rendered in list(forms_of(crawl(client))):
            for what, values in variants(rendered):
                if rendered.buttons and rendered.buttons[0][0]:
                    values.add(rendered.buttons[0][0], rendered.buttons[0][1] or "")
                if rendered.method == "get":
                    status = answer(client, "GET", rendered.action, query_string=values)
                else:
                    status = answer(client, "POST", rendered.action, data=values)
                posted += 1
                if status >= 500:
                    failures.append((role, url, rendered.action, what, status))
    assert not failures, "answered 500:\n" + "\n".join(map(str, failures))
    assert posted > 200  # the walk reached the forms (not a test that cannot fail)


# ---------------------------------------------------------------- single fields, as people see them


def test_a_notice_stage_named_over_two_lines_is_refused_beside_its_name(app, factory):
    from .conftest import login
    from .pages import submit

    client = app.test_client()
    login(client, factory.user("admin"))
    response = submit(client, "/notices/stages", {"name": "Reminder\nSecond line", "days_overdue": "7"},
                      form="days_overdue")
    assert response.status_code == 422
    assert "must be one line of plain text" in response.get_data(as_text=True)


def test_an_id_beyond_the_database_range_is_not_found(app, factory):
    from .conftest import login

    client = app.test_client()
    login(client, factory.user("staff"))
    assert client.get("/loans/2147483648").status_code == 404


def test_a_nul_byte_in_a_scanned_tag_is_a_bad_request(app):
    assert app.test_client().get("/i/%00").status_code == 400


def test_a_nul_byte_in_a_form_is_a_bad_request_that_says_why(app, factory):
    from .conftest import login
    from .pages import submit

    client = app.test_client()
    login(client, factory.user("admin"))
    response = submit(client, "/notices/stages", {"name": "Reminder\x00", "days_overdue": "7"}, form="days_overdue")
    assert response.status_code == 400
    assert "NUL character" in response.get_data(as_text=True)


def test_a_date_in_year_9999_is_refused_beside_the_date(app, factory):
    from .conftest import login
    from .pages import submit

    client = app.test_client()
    login(client, factory.user("admin"))
    response = submit(client, "/notices", {"as_of": "9999-12-31"}, form="as_of")
    assert "Enter a date between 1900 and 2199" in response.get_data(as_text=True)


def test_the_cli_prints_names_people_typed_without_their_terminal_escape_codes(app, overdue):
    from sqlalchemy import update

    from loanservice.documents.models import NoticeStage

    from .conftest import AS_OF, in_app

    with in_app(app) as session:
        session.execute(update(NoticeStage).values(name="\x1b[2J\x1b]0;owned\x07Reminder"))
        session.commit()
    result = app.test_cli_runner().invoke(args=["notices", "run", "--as-of", AS_OF.isoformat(), "--dry-run"])
    assert "\x1b" not in result.output
    assert "\\x1b[2J\\x1b]0;owned\\x07Reminder" in result.output
