"""Asset tags: what a scanned or typed code says, and the instrument (or classroom set) it names.

Every way in (the short page ``/i/<TAG>``, the scan station, the camera, lending, an exchange, a
set's check-in, a tag in a page's URL) resolves a code here: one normaliser, one look-up, one
"unknown tag". Classroom sets sit above the inventory, so they answer ``tag_not_an_instrument``
for their own tags rather than being imported here.
"""
import re
from urllib.parse import urlsplit

from blinker import Namespace
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound
from .models import Instrument

TAG_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
# A label's URL, upper-cased: host, any path prefix, then /I/<TAG>. A keyboard-wedge scanner
# set to another keyboard layout may type '/' as '?' or '\\', so those count as slashes.
_LABEL_URL = re.compile(r"^(?:HTTPS?:[/?\\]{2})?([A-Z0-9.:-]+)(?:[/?\\].*)?[/?\\]I[/?\\]([A-Z0-9-]+)[/?\\]?$")

# Sent with (session, tag=...) when no instrument has the tag; a receiver returns what else has it
# (a classroom set), or None.
tag_not_an_instrument = Namespace().signal("tag-not-an-instrument")

# Built once: every scan and every instrument page runs it (a statement built per call is built and
# keyed anew each time; a prebuilt one keeps its cache key).
_BY_TAG = select(Instrument).where(Instrument.asset_tag == bindparam("tag"))
_BY_TAG_FOR_UPDATE = _BY_TAG.with_for_update()


class UnknownTag(NotFound):
    """No instrument (nor classroom set, where one would do) has the tag, or tags, scanned or typed."""

    def __init__(self, tags: str | list[str], *, field: str | None = "code"):
        self.tags = [tags] if isinstance(tags, str) else list(tags)
        shown = ", ".join(self.tags[:10]) + (f" and {len(self.tags) - 10} more" if len(self.tags) > 10 else "")
        super().__init__(f"Unknown tag: no instrument has asset tag {shown}.", field=field)

    @property
    def tag(self) -> str:
        return self.tags[0]


class ForeignCode(InvalidInput):
    """A scanned code that is not one of this hub's labels."""


def normalise_tag(raw: str) -> str:
    """Upper-case a tag and drop stray spaces, as a scanner or a person may type it."""
    return "".join((raw or "").split()).upper()


def tag_from_code(code: str, base_url: str = "") -> str:
    """The asset tag in what a scanner read or a person typed: a label's URL (on ``base_url``'s host)
    or a bare tag, any case, stray spaces. Raises ForeignCode for a code that is neither."""
    text = normalise_tag(code)
    if not text:
        raise InvalidInput("Scan a label or type an asset tag.", field="code")
    if TAG_PATTERN.match(text):
        return text
    match = _LABEL_URL.match(text)
    if match and match.group(1) == urlsplit(base_url).netloc.upper() and TAG_PATTERN.match(match.group(2)):
        return match.group(2)
    raise ForeignCode("That code is not one of this hub's instrument labels.", field="code")


def resolve(session: Session, code: str, *, base_url: str = "", for_update: bool = False):
    """The instrument, or else the classroom set, that a scanned code or typed tag names (one query
    for an instrument's tag); UnknownTag or ForeignCode otherwise. ``for_update`` locks an instrument."""
    tag = tag_from_code(code, base_url)
    instrument = session.scalars(_BY_TAG_FOR_UPDATE if for_update else _BY_TAG, {"tag": tag}).first()
    if instrument is not None:
        return instrument
    for _, other in tag_not_an_instrument.send(session, tag=tag):
        if other is not None:
            return other
    raise UnknownTag(tag)


def resolve_instrument(session: Session, code: str, *, base_url: str = "", for_update: bool = False) -> Instrument:
    """``resolve`` where only an instrument will do: a classroom set's tag is refused as unknown."""
    found = resolve(session, code, base_url=base_url, for_update=for_update)
    if not isinstance(found, Instrument):
        raise UnknownTag(found.tag)
    return found
