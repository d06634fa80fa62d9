"""Printing labels and reading scanned codes: the rules, shared by the pages and the CLI.

Like every service, these take the session first, flush and never commit.
"""
import io
from collections.abc import Callable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..audit.services import record
from ..errors import InvalidInput
from ..inventory.models import Instrument, InstrumentStatus
from ..inventory.tags import UnknownTag, normalise_tag
from ..timeutil import utcnow
from .render import LabelContent, LabelRenderer, label_url
from .stocks import LabelStock


class EmptySelection(InvalidInput):
    """Nothing was chosen to print."""


class UnreadableFrame(InvalidInput):
    """A camera frame that is empty or not an image."""

    status_code = 400


class FrameTooLarge(UnreadableFrame):
    status_code = 413


class Scope:
    UNLABELLED = "unlabelled"
    ALL = "all"


SCOPES = (Scope.UNLABELLED, Scope.ALL)


def instrument_label(instrument: Instrument, *, base_url: str, hub_name: str) -> LabelContent:
    """The label for one instrument: its short URL as a QR code, tag, type, size and the hub."""
    lines = [instrument.type.name]
    if instrument.size:
        lines.append(f"Size {instrument.size}")
    return LabelContent(payload=label_url(base_url, instrument.asset_tag), title=instrument.asset_tag,
                        lines=tuple(lines), footer=hub_name)


def set_label(classroom_set, items: Sequence[Instrument], *, base_url: str, hub_name: str) -> LabelContent:
    """The label for a classroom set's box or case: the same short URL as an instrument's (set and
    instrument tags never clash), the set's tag, its name and what is in it."""
    what = f"{len(items)} instrument{'' if len(items) == 1 else 's'}"
    return LabelContent(payload=label_url(base_url, classroom_set.tag), title=classroom_set.tag,
                        lines=(classroom_set.name, what), footer=hub_name)


# A scope prints labels for the instruments on the store's shelves: not those out on loan, at a
# repairer, missing or written off, whose labels would only wait on the sheet (and count as stuck on).
IN_STORE = (InstrumentStatus.AVAILABLE, InstrumentStatus.RESERVED, InstrumentStatus.AWAITING_AGREEMENT)


def select_for_labels(session: Session, *, tags: Sequence[str] = (), scope: str = "") -> list[Instrument]:
    """The instruments to label: the given tags in the order given, or every one in the store in ``scope``."""
    if tags:
        wanted = list(dict.fromkeys(normalise_tag(tag) for tag in tags if normalise_tag(tag)))
        if not wanted:
            raise EmptySelection("Choose at least one instrument to label.", field="tags")
        found = {
            instrument.asset_tag: instrument
            for chunk in _chunks(wanted, 500)
            for instrument in session.scalars(select(Instrument).where(Instrument.asset_tag.in_(chunk)))
        }
        unknown = [tag for tag in wanted if tag not in found]
        if unknown:
            raise UnknownTag(unknown, field="tags")
        return [found[tag] for tag in wanted]
    if scope not in SCOPES:
        raise EmptySelection("Choose at least one instrument to label: some tags, every unlabelled one, or all.")
    query = select(Instrument).where(Instrument.status.in_(IN_STORE))
    if scope == Scope.UNLABELLED:
        query = query.where(Instrument.labelled_at.is_(None))
    instruments = list(session.scalars(query.order_by(Instrument.asset_tag)))
    if not instruments:
        raise EmptySelection("Every instrument in the store already has a label." if scope == Scope.UNLABELLED
                             else "There are no instruments in the store to label.")
    return instruments


def count_for_labels(session: Session) -> dict[str, int]:
    """How many instruments each scope would print, and how many without a label are out of the store
    (on loan or at a repairer: labelled once they are back)."""
    unlabelled = Instrument.labelled_at.is_(None)
    in_store = Instrument.status.in_(IN_STORE)
    out = Instrument.status.in_((InstrumentStatus.ON_LOAN, InstrumentStatus.IN_REPAIR, InstrumentStatus.IN_SERVICE))
    return {
        Scope.ALL: session.scalar(select(func.count()).where(in_store)),
        Scope.UNLABELLED: session.scalar(select(func.count()).where(in_store, unlabelled)),
        "unlabelled_out": session.scalar(select(func.count()).where(out, unlabelled)),
    }


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def print_labels(
    session: Session,
    actor,
    instruments: Sequence[Instrument],
    stock: LabelStock,
    *,
    start: int = 1,
    base_url: str,
    hub_name: str,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """Render the instruments' labels into a PDF and record that each was labelled (or relabelled)."""
    if not instruments:
        raise EmptySelection("Choose at least one instrument to label.", field="tags")
    stock.check_start(start)
    pdf = LabelRenderer(stock).render(
        (instrument_label(i, base_url=base_url, hub_name=hub_name) for i in instruments),
        start=start, progress=progress,
    )
    _record_labelled(session, actor, instruments, stock)
    session.flush()
    return pdf


def _record_labelled(session: Session, actor, instruments: Sequence[Instrument], stock: LabelStock) -> None:
    now = utcnow()
    for instrument in instruments:
        again = instrument.labelled_at is not None
        instrument.labelled_at = now
        record(session, actor, "instrument.labelled", instrument,
               f"{'Label reprinted' if again else 'Label printed'} on {stock.name}", {"stock": stock.name})


def print_set_labels(
    session: Session,
    actor,
    classroom_set,
    items: Sequence[Instrument],
    stock: LabelStock,
    *,
    with_items: bool,
    start: int = 1,
    base_url: str,
    hub_name: str,
) -> bytes:
    """The set's own label, then (``with_items``) a label for each of its instruments; records both."""
    stock.check_start(start)
    labels = [set_label(classroom_set, items, base_url=base_url, hub_name=hub_name)]
    if with_items:
        labels += [instrument_label(i, base_url=base_url, hub_name=hub_name) for i in items]
    pdf = LabelRenderer(stock).render(labels, start=start)
    record(session, actor, "set.labelled", classroom_set,
           f"Set label printed on {stock.name}"
           + (f", with its {len(items)} instruments' labels" if with_items else ""),
           {"stock": stock.name, "with_items": with_items})
    if with_items:
        _record_labelled(session, actor, items, stock)
    session.flush()
    return pdf


# ---------------------------------------------------------------- camera frames

# A camera frame is a JPEG of a few tens of kilobytes; refuse anything far larger.
MAX_FRAME_BYTES = 2 * 1024 * 1024


def read_frame(image_bytes: bytes) -> list[str]:
    """The text of every QR code in one camera frame (a JPEG or PNG), for every camera scanning page."""
    if not image_bytes:
        raise UnreadableFrame("No image was sent.")
    if len(image_bytes) > MAX_FRAME_BYTES:
        raise FrameTooLarge("The image is too large.")
    try:
        return read_qr_codes(image_bytes)
    except ValueError:
        raise UnreadableFrame("The image could not be read.") from None


def read_qr_codes(image_bytes: bytes) -> list[str]:
    """The text of every QR code in an image; ValueError when it is not an image."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            if image.width * image.height > 4096 * 4096:
                raise ValueError("image too large")
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError("not an image") from error
    return [barcode.text for barcode in zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.QRCode)
            if barcode.valid and barcode.text]
