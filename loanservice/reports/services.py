"""Saving a report as given to a funder, so that it can be downloaded again unchanged."""
import hashlib
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from ..audit.services import record
from ..errors import InvalidInput
from ..inventory.models import Instrument, InstrumentStatus
from ..timeutil import today
from .exports import asset_register_workbook, data_return_workbook
from .figures import DataReturn, RegisterFilters, register_totals
from .models import ReportKind, ReportSnapshot


def _snapshot(session: Session, actor, kind: ReportKind, title: str, parameters: dict, figures: dict,
              workbook: bytes, note: str) -> ReportSnapshot:
    note = (note or "").strip()
    if len(note) > 300:
        raise InvalidInput("Keep the note to 300 characters.", field="note")
    snapshot = ReportSnapshot(kind=kind, title=title, parameters=parameters, figures=figures, workbook=workbook,
                              sha256=hashlib.sha256(workbook).hexdigest(), note=note, created_by=actor)
    session.add(snapshot)
    session.flush()
    record(session, actor, "report.saved", snapshot, f"{title} saved as given", {"note": note})
    return snapshot


def save_data_return(session: Session, actor, report: DataReturn, hub: str, note: str = "") -> ReportSnapshot:
    return _snapshot(session, actor, ReportKind.DATA_RETURN, f"Data return {report.year.label}",
                     {"year": report.year.label, "threshold": report.threshold}, report.figures(),
                     data_return_workbook(report, hub), note)


def save_asset_register(session: Session, actor, filters: RegisterFilters, capitalisation: Decimal, hub: str,
                        note: str = "") -> ReportSnapshot:
    totals = register_totals(session, filters, capitalisation)
    figures = {"totals": [[t.funding, t.year, t.instruments, str(t.cost), t.disposed, str(t.proceeds),
                           t.below_threshold] for t in totals]}
    title = "Asset register" + (f", {filters.funding}" if filters.funding else "") + (
        f", bought {filters.year.label}" if filters.year else "")
    workbook = asset_register_workbook(session, filters, capitalisation, hub)
    return _snapshot(session, actor, ReportKind.ASSET_REGISTER, title,
                     {"funding": filters.funding, "year": filters.year.label if filters.year else "",
                      "capitalisation": str(capitalisation)}, figures, workbook, note)


def record_disposal(session: Session, actor, instrument: Instrument, disposed_on: date,
                    proceeds: Decimal | None) -> Instrument:
    """When a written-off instrument left the hub and what it fetched, for the asset register."""
    if instrument.status is not InstrumentStatus.WRITTEN_OFF:
        raise InvalidInput(f"{instrument.asset_tag} is not written off: write it off first.")
    if disposed_on > today():
        raise InvalidInput("The disposal date is in the future.", field="disposed_on")
    if instrument.purchased_on and disposed_on < instrument.purchased_on:
        raise InvalidInput("The disposal date is before the instrument was bought.", field="disposed_on")
    if proceeds is not None and proceeds < 0:
        raise InvalidInput("Proceeds cannot be negative: give 0 if it fetched nothing.", field="proceeds")
    instrument.disposed_on, instrument.disposal_proceeds = disposed_on, proceeds
    record(session, actor, "instrument.disposal", instrument,
           f"Disposed of on {disposed_on:%-d %b %Y}" + (f" for £{proceeds:,.2f}" if proceeds is not None else ""),
           {"disposed_on": disposed_on, "proceeds": proceeds}, instrument=instrument)
    return instrument
