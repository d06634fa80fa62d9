"""Template filters and globals: display only, no queries."""
from datetime import date, datetime
from decimal import Decimal

from flask import Flask, request, url_for
from markupsafe import Markup, escape

from .borrowers.models import RemissionCategory
from .inventory.models import CONDITION_GRADES
from .wording import counted


def scroll_region(label: str) -> Markup:
    """The attributes of a wrapper that scrolls a wide table sideways: keyboard users can focus it
    (and scroll it with the arrow keys), and screen readers hear what it holds.

    ``<div {{ scroll_region("Overdue loans") }}><table>...</table></div>``
    """
    return Markup('class="table-wrap" tabindex="0" role="region" aria-label="{}"').format(escape(label))


def register_template_helpers(app: Flask) -> None:
    @app.template_filter("money")
    def money(value: Decimal | None) -> str:
        if value is None:
            return ""
        return f"-£{-value:,.2f}" if value < 0 else f"£{value:,.2f}"

    @app.template_filter("day")
    def day(value: date | datetime | None) -> str:
        return "" if value is None else value.strftime("%-d %b %Y")

    @app.template_filter("when")
    def when(value: datetime | None) -> str:
        return "" if value is None else value.strftime("%-d %b %Y %H:%M")

    app.add_template_filter(counted, "counted")

    @app.template_filter("remission")
    def remission(category: str | None) -> str:
        """A remission category's label (RemissionCategory.label), from its stored value."""
        return RemissionCategory(category or "none").label

    @app.template_global()
    def url_with(**changes) -> str:
        """The current page's URL with some query arguments changed (for sorting, paging)."""
        args = request.args.to_dict()
        args.update({k: v for k, v in changes.items() if v is not None})
        for key in [k for k, v in changes.items() if v is None]:
            args.pop(key, None)
        return url_for(request.endpoint, **(request.view_args or {}), **args)

    # Globals rather than a context processor, so imported macros see them too.
    app.jinja_env.globals.update(hub_name=app.config["HUB_NAME"], condition_grades=CONDITION_GRADES,
                                 scroll_region=scroll_region)
