"""The subject access export: everything held about a family and each child, as one ZIP.

The ZIP holds ``summary.html`` (readable, opens in any browser), ``data.json`` (the same, for
machines), the stored PDFs (agreements as shown and as signed, overdue notices) and each email
sent to the family as ``.eml``.
"""
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask import render_template
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, undefer

from ..audit.models import AuditEvent
from ..audit.services import record
from ..borrowers.models import Family, Pupil, RemissionClaim
from ..documents.models import Agreement, Notice
from ..loans.models import Loan, LoanCharge
from ..locks import lock
from ..mail.models import OutboxMessage
from ..money.models import InvoiceLine, LedgerEntry, PayerAccount
from ..parents.models import ParentRequest
from ..reservations.models import Reservation
from ..reservations.services import waiting_places
from ..timeutil import utcnow
from .models import AccessRequest, FamilyAnonymisation, PrivacyHold


@dataclass
class FamilyExport:
    filename: str
    data: bytes


def _plain(value):
    """A value as JSON holds it: dates as ISO text, money as text with its pence."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if hasattr(value, "value") and hasattr(value, "name"):  # an enum
        return value.value
    return value


def _row(obj, *names) -> dict:
    return {name: _plain(getattr(obj, name)) for name in names}


def family_record(session: Session, family: Family, config) -> tuple[dict, list[tuple[str, bytes]]]:
    """Everything held about ``family`` as plain data, and the stored files (name, bytes) to go with it."""
    files: list[tuple[str, bytes]] = []
    pupils = list(session.scalars(select(Pupil).where(Pupil.family_id == family.id).order_by(Pupil.id)))
    pupil_ids = [p.id for p in pupils]
    claims = {c.pupil_id: c for c in session.scalars(select(RemissionClaim).where(
        RemissionClaim.pupil_id.in_(pupil_ids)))} if pupil_ids else {}
    loans = list(session.scalars(select(Loan).where(
        or_(Loan.family_id == family.id, Loan.pupil_id.in_(pupil_ids)) if pupil_ids
        else Loan.family_id == family.id).order_by(Loan.started_on, Loan.id)))
    loan_ids = [loan.id for loan in loans]
    reservations = list(session.scalars(select(Reservation).where(Reservation.pupil_id.in_(pupil_ids))
                                        .order_by(Reservation.created_at))) if pupil_ids else []
    places = waiting_places(session, [r for r in reservations if r.is_active], config)
    agreements = list(session.scalars(select(Agreement).where(Agreement.loan_id.in_(loan_ids))
                                      .options(undefer(Agreement.pdf), undefer(Agreement.signed_pdf))
                                      .order_by(Agreement.id))) if loan_ids else []
    notices = list(session.scalars(select(Notice).where(Notice.loan_id.in_(loan_ids))
                                   .options(undefer(Notice.pdf)).order_by(Notice.id))) if loan_ids else []
    charges = list(session.scalars(select(LoanCharge).where(LoanCharge.loan_id.in_(loan_ids))
                                   .order_by(LoanCharge.id))) if loan_ids else []
    account = session.scalar(select(PayerAccount).where(PayerAccount.family_id == family.id))
    entries = list(session.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account.id)
                                   .order_by(LedgerEntry.posted_on, LedgerEntry.id))) if account else []
    lines = list(session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id.in_([e.id for e in entries]))
                                 .order_by(InvoiceLine.id))) if entries else []
    requests = list(session.scalars(select(ParentRequest).where(ParentRequest.family_id == family.id)))
    access = list(session.scalars(select(AccessRequest).where(AccessRequest.family_id == family.id)))
    hold = session.scalar(select(PrivacyHold).where(PrivacyHold.family_id == family.id))
    anonymised = session.get(FamilyAnonymisation, family.id)

    emails_to = [e for e in {family.email, family.user.email if family.user else "",
                             account.payer_email if account else ""} if e]
    mail_ids = {n.mail_id for n in notices if n.mail_id}
    mails = list(session.scalars(select(OutboxMessage).where(or_(
        OutboxMessage.id.in_(mail_ids), *[OutboxMessage.recipients.contains(e) for e in emails_to]))
        .options(undefer(OutboxMessage.message)).order_by(OutboxMessage.created_at))) if (
        mail_ids or emails_to) else []

    entities = {"family": [family.id], "pupil": pupil_ids, "loan": loan_ids,
                "reservation": [r.id for r in reservations], "agreement": [a.id for a in agreements],
                "notice": [n.id for n in notices], "user_account": [family.user_id] if family.user_id else [],
                "payer_account": [account.id] if account else [], "access_request": [r.id for r in access],
                "ledger_entry": [e.id for e in entries]}
    conditions = [(AuditEvent.entity_type == kind) & AuditEvent.entity_id.in_(ids)
                  for kind, ids in entities.items() if ids]
    events = list(session.scalars(select(AuditEvent).where(or_(*conditions)).order_by(AuditEvent.at, AuditEvent.id)))

    for agreement in agreements:
        if agreement.pdf:
            files.append((f"documents/agreement-{agreement.id}.pdf", agreement.pdf))
        if agreement.signed_pdf:
            files.append((f"documents/agreement-{agreement.id}-signed.pdf", agreement.signed_pdf))
    for notice in notices:
        if notice.pdf:
            files.append((f"documents/notice-{notice.id}.pdf", notice.pdf))
    for mail in mails:
        if mail.message:
            files.append((f"emails/email-{mail.id}.eml", mail.message))

    data = {
        "exported_at": _plain(utcnow()),
        "hub": config.get("HUB_NAME", ""),
        "family": {**_row(family, "id", "name", "email", "phone", "address", "created_at"),
                   "sign_in_email": family.user.email if family.user else None,
                   "last_sign_in": _plain(family.user.last_login_at) if family.user else None,
                   "anonymised": _row(anonymised, "cause", "at") if anonymised else None,
                   "hold": _row(hold, "reason", "created_at") if hold else None},
        "children": [{**_row(p, "id", "name", "year_group", "send", "created_at"),
                      "school": p.school.name if p.school else None,
                      "remission_category": p.remission_category.label,
                      "remission_verified_on": _plain(p.remission_verified_on),
                      "remission_claimed": claims[p.id].label if p.id in claims else None} for p in pupils],
        "loans": [{**_row(loan, "id", "started_on", "due_on", "closed_on", "accessories", "condition_at_issue",
                          "condition_at_return", "damaged", "return_note", "fee_per_term", "remission_category",
                          "charge_per_term", "deposit", "replacement_owed"),
                   "status": loan.status.label, "instrument": str(loan.instrument),
                   "child": loan.pupil.name if loan.pupil else None} for loan in loans],
        "charges": [{**_row(c, "id", "loan_id", "amount", "settled_on"), "status": _plain(c.status),
                     "term": c.term.name} for c in charges],
        "reservations": [{**_row(r, "id", "preferred_start_on", "collect_by", "created_at", "closed_at"),
                          "child": r.pupil.name, "instrument": r.description, "status": r.status.label,
                          "waiting_list_place": places.get(r.id)} for r in reservations],
        "agreements": [{**_row(a, "id", "loan_id", "created_at", "sha256", "signed_at", "signed_name",
                               "countersigned_at"),
                        "signature": a.signature_method.label if a.signature_method else None,
                        "hire_conditions_version": a.hire_conditions.version} for a in agreements],
        "notices": [{**_row(n, "id", "loan_id", "as_of", "days_overdue", "recipient_name", "recipient_email",
                            "sent_at"), "letter": n.stage.name, "channel": _plain(n.channel),
                     "status": _plain(n.status)} for n in notices],
        "account": {**_row(account, "reference", "payer_name", "payer_email", "payer_address")} if account else None,
        "invoices_and_payments": [{**_row(e, "id", "number", "posted_on", "due_on", "amount", "reference", "note"),
                                   "kind": _plain(e.kind), "method": _plain(e.method),
                                   "lines": [_row(line, "description", "full_fee", "remission_category", "amount")
                                             for line in lines if line.invoice_id == e.id]} for e in entries],
        "requests_about_loans": [{**_row(r, "id", "loan_id", "note", "created_at", "handled_at"),
                                  "kind": r.kind.label} for r in requests],
        "subject_access_requests": [_row(r, "id", "requester_name", "relationship_to_child", "received_on",
                                         "due_on", "extended_to", "extension_reason", "answered_on")
                                    for r in access],
        "emails": [{**_row(m, "id", "created_at", "recipients", "subject", "sent_at"), "status": _plain(m.status),
                    "file": f"emails/email-{m.id}.eml" if m.message else None} for m in mails],
        "audit_events": [_row(e, "at", "action", "entity_type", "entity_id", "summary", "changes") for e in events],
        "files": [name for name, _ in files],
    }
    return data, files


def build_family_export(session: Session, actor, family: Family, config) -> FamilyExport:
    """The ZIP of everything held about ``family``. Two asked at once take turns on the family's row, so
    neither reads a family half-changed by the other or by an anonymisation."""
    lock(session, family)
    data, files = family_record(session, family, config)
    summary = render_template("privacy/export.html", data=data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("summary.html", summary)
        archive.writestr("data.json", json.dumps(data, indent=2, ensure_ascii=False))
        for name, content in files:
            archive.writestr(name, content)
    record(session, actor, "privacy.exported", family, f"Exported everything held about family #{family.id}",
           {"files": len(files) + 2})
    return FamilyExport(f"family-{family.id}-data-{utcnow():%Y-%m-%d}.zip", buffer.getvalue())
