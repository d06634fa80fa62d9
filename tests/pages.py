"""Submit a form as the page renders it, the way a browser does.

A test that posts hand-picked fields cannot see a field the page renders twice (both values
are posted, and WTForms joins them) or one it forgot (the post is refused). ``submit`` reads
the form out of the page's HTML and posts every field it has, with only the fields a person
would change set by the test.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import html as lxml_html
from werkzeug.datastructures import MultiDict

# Inputs a browser leaves out of a submission (a submit button counts only when clicked).
_NOT_POSTED = {"submit", "image", "reset", "file", "button"}


class FormNotFound(AssertionError):
    """The page has no form the test asked for."""


@dataclass
class RenderedForm:
    """A form read from a page: where it posts and the (name, value) pairs a browser would send."""

    action: str
    method: str
    pairs: list[tuple[str, str]]
    names: set[str]
    buttons: list[tuple[str | None, str | None, str]]  # (name, value, visible text)
    kinds: dict[str, str]  # each field's kind: textarea, select, or its input's type (text, date, hidden...)

    def values(self, name: str) -> list[str]:
        """The values the form would post for ``name`` (several when it is rendered several times)."""
        return [v for n, v in self.pairs if n == name]


def read_form(page_html: str, page_url: str, form: str | int | None = None) -> RenderedForm:
    """The form of a page: the only one that posts in <main>, or the ``form``-th in <main>, or the
    one anywhere with that id, that field name or that action (``"/logout"``, the header's sign-out)."""
    doc = lxml_html.fromstring(page_html)
    # The page's own forms: those in <main>, not the sign-out button in the header.
    mains = doc.xpath("//main")
    forms = mains[0].xpath(".//form") if mains and not isinstance(form, str) else doc.forms
    if form is None:
        forms = [f for f in forms if (f.get("method") or "get").lower() == "post"]
    chosen = _choose(forms, form, page_url)
    pairs: list[tuple[str, str]] = []
    names: set[str] = set()
    kinds: dict[str, str] = {}
    for el in chosen.inputs:
        name = el.get("name")
        if not name:
            continue
        names.add(name)
        kinds.setdefault(name, el.tag.lower() if el.tag.lower() in ("textarea", "select")
                         else (el.get("type") or "text").lower())
        if "disabled" in el.attrib:
            continue
        tag = el.tag.lower()
        if tag == "textarea":
            pairs.append((name, el.text or ""))
        elif tag == "select":
            value = el.value
            if el.multiple:
                pairs.extend((name, v) for v in value)
            elif value is not None:
                pairs.append((name, value))
        else:
            kind = (el.get("type") or "text").lower()
            if kind in _NOT_POSTED:
                continue
            if kind in ("checkbox", "radio"):
                if "checked" in el.attrib:
                    pairs.append((name, el.get("value", "on")))
                continue
            pairs.append((name, el.get("value", "")))
    buttons = []
    for el in chosen.iter("button", "input"):
        kind = (el.get("type") or ("submit" if el.tag == "button" else "text")).lower()
        if kind == "submit":
            text = " ".join(el.text_content().split()) if el.tag == "button" else el.get("value", "")
            buttons.append((el.get("name"), el.get("value"), text))
    action = chosen.get("action") or page_url
    parts = urlsplit(action)
    action = parts.path + (f"?{parts.query}" if parts.query else "") if parts.path else page_url
    return RenderedForm(action=action, method=(chosen.get("method") or "get").lower(),
                        pairs=pairs, names=names, buttons=buttons, kinds=kinds)


def _choose(forms, form, page_url):
    if isinstance(form, int):
        return forms[form]
    if isinstance(form, str):
        for f in forms:
            if form in (f.get("id"), urlsplit(f.get("action") or "").path) \
                    or form in {el.get("name") for el in f.inputs}:
                return f
        raise FormNotFound(f"no form with id or field {form!r} on {page_url}")
    if len(forms) != 1:
        raise FormNotFound(f"{len(forms)} forms that post on {page_url}: say which with form=")
    return forms[0]


def fill(rendered: RenderedForm, data: dict | None) -> MultiDict:
    """The rendered values with ``data`` typed in; a name the form does not have is an error.

    A value of ``None`` unticks a checkbox (or clears a radio group); a list gives several values;
    a ``(file, filename)`` tuple chooses a file for a file input.
    """
    pairs = list(rendered.pairs)
    for name, value in (data or {}).items():
        if name not in rendered.names:
            raise FormNotFound(f"the form posting to {rendered.action} has no field {name!r} "
                               f"(it has {sorted(rendered.names)})")
        pairs = [(n, v) for n, v in pairs if n != name]
        if value is None:
            continue
        for v in value if isinstance(value, list) else [value]:
            pairs.append((name, v if isinstance(v, tuple) else str(v)))
    return MultiDict(pairs)


def submit(client, page_url: str, data: dict | None = None, *, form: str | int | None = None,
           button: str | None = None, follow_redirects: bool = False):
    """Open ``page_url``, fill its form with ``data`` and press its submit button (or ``button``).

    Returns the response to the post. Every field the page renders is posted as rendered,
    duplicates included, so the test sees what a person in a browser would.
    """
    page = client.get(page_url)
    assert page.status_code == 200, f"{page_url} answered {page.status_code}"
    return submit_on(client, page, page_url, data, form=form, button=button, follow_redirects=follow_redirects)


def submit_on(client, page, page_url: str, data: dict | None = None, *, form: str | int | None = None,
              button: str | None = None, follow_redirects: bool = False):
    """Like ``submit``, on a page already in hand (the answer to a post, e.g. a preview to confirm)."""
    rendered = read_form(page.get_data(as_text=True), page_url, form)
    values = fill(rendered, data)
    pressed = _press(rendered, button)
    if pressed and pressed[0]:
        values.add(pressed[0], pressed[1] or "")
    if rendered.method == "get":
        return client.get(rendered.action, query_string=values, follow_redirects=follow_redirects)
    return client.post(rendered.action, data=values, follow_redirects=follow_redirects)


def _press(rendered: RenderedForm, button: str | None):
    if not rendered.buttons:
        return None
    if button is None:
        return rendered.buttons[0]
    for b in rendered.buttons:
        if button in (b[0], b[2]):
            return b
    raise FormNotFound(f"no button {button!r} in the form posting to {rendered.action} "
                       f"(it has {[b[2] for b in rendered.buttons]})")
