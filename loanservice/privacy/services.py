"""Retention, holds and anonymisation: what is due, what refuses it, and replacing a family's personal data.

A family is anonymised in one transaction: its people become "Family 12" and "Pupil 34", its contact
details, free text and SEND flag go, the stored PDFs that name it are deleted (their date, kind and
hash kept), and the audit events and ledger words that name it lose the names. Loans, charges,
conditions, remission categories, schools and year groups stay, so every count is the same after.
"""
import calendar
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import String, bindparam, case, cast, func, literal, or_, select, update
from sqlalchemy.orm import Session

from ..accounts.models import RememberToken, User
from ..audit.models import AuditEvent
from ..audit.services import record
from ..borrowers.models import Family, Pupil
from ..documents.models import Agreement, Notice
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..inventory.models import ConditionCheck
from ..loans.models import HOLDING_STATUSES, Loan
from ..locks import lock
from ..mail.models import MailStatus, OutboxMessage
from ..money.models import BankLine, InvoiceLine, LedgerEntry, PayerAccount
from ..parents.models import AccountToken, ParentRequest
from ..reservations.models import ACTIVE_STATUSES, Reservation
from ..signals import parent_registered
from ..timeutil import today, utcnow
from .models import (
    AccessRequest,
    FamilyAnonymisation,
    PrivacyHold,
    PrivacyNotice,
    PrivacyNoticeAcceptance,
    RemovedDocument,
    RetentionPolicy,
)

ZERO = Decimal("0.00")
# How far ahead the admin page shows the next runs' list (admins are warned a month ahead).
LOOKAHEAD_DAYS = 30
CHUNK = 500  # families looked at per query in a run: memory stays flat however many are due
REMOVED = "(removed)"
# Keys of an audit event's changes that hold a person's words, whatever the event is about.
PERSONAL_KEYS = {"name", "email", "phone", "address", "note", "notes", "signed_name", "payer_name",
                 "payer_email", "payer_address", "recipient_name", "recipient_email", "requester_name",
                 "return_note", "send"}


class PrivacyError(LoanServiceError):
    """A privacy rule was broken."""


class Refused(PrivacyError):
    """The family may not be anonymised or erased now; the message says why."""


# ---------------------------------------------------------------- the policy


def retention_policy(session: Session) -> RetentionPolicy:
    """The hub's retention policy: the saved one, or the defaults (not saved until an admin changes them)."""
    policy = session.get(RetentionPolicy, 1)
    if policy is None:
        policy = RetentionPolicy(id=1, family_years=6, reservation_years=1, account_years=2, outbox_days=90)
    return policy


def save_retention_policy(session: Session, actor, *, family_years: int, reservation_years: int,
                          account_years: int, outbox_days: int) -> RetentionPolicy:
    """Change the retention periods."""
    for value, name, low, high in ((family_years, "family_years", 1, 100),
                                   (reservation_years, "reservation_years", 1, 100),
                                   (account_years, "account_years", 1, 100), (outbox_days, "outbox_days", 1, 3650)):
        if not low <= value <= high:
            raise InvalidInput(f"Give a number from {low} to {high}.", field=name)
    policy = session.get(RetentionPolicy, 1)
    if policy is None:
        policy = RetentionPolicy(id=1)
        session.add(policy)
    policy.family_years, policy.reservation_years = family_years, reservation_years
    policy.account_years, policy.outbox_days = account_years, outbox_days
    policy.updated_at, policy.updated_by_id = utcnow(), actor.id if actor is not None else None
    session.flush()
    record(session, actor, "privacy.policy_changed", policy, "Changed the retention policy",
           {"family_years": family_years, "reservation_years": reservation_years,
            "account_years": account_years, "outbox_days": outbox_days})
    return policy


def add_years(day: date, years: int) -> date:
    """``day`` moved on by whole years (29 February becomes 28 February in a common year)."""
    year = day.year + years
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


def add_months(day: date, months: int) -> date:
    """``day`` moved on by calendar months (31 January + 1 month is 28 or 29 February)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# ---------------------------------------------------------------- what is due, and what stops it


@dataclass
class FamilyFacts:
    """What decides when a family's data may go, read in a few grouped queries."""

    family_id: int
    name: str
    added_on: date
    last_sign_in: date | None = None
    loans: int = 0
    holding_loans: int = 0
    last_loan_end: date | None = None
    reservations: int = 0
    active_reservations: int = 0
    last_reservation_end: date | None = None
    balance: Decimal = ZERO
    last_money: date | None = None
    hold_reason: str | None = None
    anonymised: bool = False

    def due(self, policy: RetentionPolicy) -> tuple[date, str]:
        """When the data may go and the rule that says so: the latest date any rule gives."""
        candidates = [(add_years(self.last_sign_in or self.added_on, policy.account_years),
                       f"{policy.account_years} years since the parent last signed in" if self.last_sign_in
                       else f"{policy.account_years} years since the family was added")]
        if self.last_reservation_end:
            candidates.append((add_years(self.last_reservation_end, policy.reservation_years),
                               f"{policy.reservation_years} year(s) since the last reservation closed"))
        if self.last_loan_end:
            candidates.append((add_years(self.last_loan_end, policy.family_years),
                               f"{policy.family_years} years since the last loan ended"))
        if self.last_money:
            candidates.append((add_years(self.last_money, policy.family_years),
                               f"{policy.family_years} years since the account was last settled"))
        return max(candidates, key=lambda c: c[0])

    @property
    def blockers(self) -> list[str]:
        """Why the family may not be anonymised or erased now (nothing when it may)."""
        reasons = []
        if self.anonymised:
            reasons.append("it has already been anonymised")
        if self.holding_loans:
            reasons.append("an instrument is on loan to it or awaiting its signed agreement")
        if self.active_reservations:
            reasons.append("a reservation is still open")
        if self.balance > ZERO:
            reasons.append(f"its account owes £{self.balance:,.2f}")
        if self.hold_reason is not None:
            reasons.append(f"it is on hold ({self.hold_reason})")
        return reasons


def _day(value) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):  # SQLite's max() of a datetime column
        return datetime.fromisoformat(value).date()
    return value


def family_facts(session: Session, family_ids: list[int]) -> dict[int, FamilyFacts]:
    """The facts of the given families, in a handful of queries."""
    if not family_ids:
        return {}
    facts = {}
    rows = session.execute(select(Family.id, Family.name, Family.created_at, User.last_login_at,
                                  FamilyAnonymisation.family_id, PrivacyHold.reason)
                           .outerjoin(User, User.id == Family.user_id)
                           .outerjoin(FamilyAnonymisation, FamilyAnonymisation.family_id == Family.id)
                           .outerjoin(PrivacyHold, PrivacyHold.family_id == Family.id)
                           .where(Family.id.in_(family_ids)))
    for family_id, name, created_at, last_login, anonymised, hold in rows:
        facts[family_id] = FamilyFacts(family_id, name, created_at.date(), _day(last_login),
                                       hold_reason=hold, anonymised=anonymised is not None)
    # A loan is the family's when it is lent to the family or to one of its children.
    loan_family = func.coalesce(Pupil.family_id, Loan.family_id)
    holding = func.sum(case((Loan.status.in_(HOLDING_STATUSES), 1), else_=0))
    loans = (select(loan_family, func.count(Loan.id), holding, func.max(Loan.closed_on))
             .select_from(Loan).outerjoin(Pupil, Pupil.id == Loan.pupil_id)
             .where(or_(Loan.family_id.in_(family_ids), Pupil.family_id.in_(family_ids))).group_by(loan_family))
    for family_id, count, holding_count, last_end in session.execute(loans):
        if family_id in facts:
            facts[family_id].loans, facts[family_id].holding_loans = count, int(holding_count or 0)
            facts[family_id].last_loan_end = _day(last_end)
    active = func.sum(case((Reservation.status.in_(ACTIVE_STATUSES), 1), else_=0))
    reservations = (select(Pupil.family_id, func.count(Reservation.id), active,
                           func.max(func.coalesce(Reservation.closed_at, Reservation.created_at)))
                    .join(Pupil, Pupil.id == Reservation.pupil_id).where(Pupil.family_id.in_(family_ids))
                    .group_by(Pupil.family_id))
    for family_id, count, active_count, last_end in session.execute(reservations):
        facts[family_id].reservations, facts[family_id].active_reservations = count, int(active_count or 0)
        facts[family_id].last_reservation_end = _day(last_end)
    money = (select(PayerAccount.family_id, func.sum(LedgerEntry.amount), func.max(LedgerEntry.posted_on))
             .join(LedgerEntry, LedgerEntry.account_id == PayerAccount.id)
             .where(PayerAccount.family_id.in_(family_ids)).group_by(PayerAccount.family_id))
    for family_id, total, last_posted in session.execute(money):
        facts[family_id].balance = Decimal(total or ZERO).quantize(ZERO)
        facts[family_id].last_money = _day(last_posted)
    return facts


def facts_of(session: Session, family: Family) -> FamilyFacts:
    return family_facts(session, [family.id])[family.id]


@dataclass
class DueFamily:
    """A family in a run's list: when it is due, why, and what (if anything) stops it."""

    family_id: int
    name: str
    due_on: date
    reason: str
    blockers: list[str] = field(default_factory=list)

    @property
    def will_go(self) -> bool:
        return not self.blockers


def check_as_of(as_of: date | None) -> date:
    """The run's date: today unless given; never in the future (a run cannot act on tomorrow's rules)."""
    if as_of is None:
        return today()
    if as_of > today():
        raise InvalidInput(f"The date {as_of:%-d %B %Y} is in the future: anonymisation runs as of today or "
                           "an earlier date. Use the review to see what is coming.", field="as_of")
    return as_of


def due_families(session: Session, as_of: date, policy: RetentionPolicy, *,
                 include_blocked: bool = True) -> Iterator[DueFamily]:
    """The families whose retention period has ended by ``as_of``, by id, read a chunk at a time."""
    after = 0
    while True:
        ids = session.scalars(select(Family.id).where(Family.id > after)
                              .where(~select(FamilyAnonymisation.family_id)
                                     .where(FamilyAnonymisation.family_id == Family.id).exists())
                              .order_by(Family.id).limit(CHUNK)).all()
        if not ids:
            return
        facts = family_facts(session, ids)
        for family_id in ids:
            one = facts[family_id]
            due_on, reason = one.due(policy)
            if due_on <= as_of and (include_blocked or not one.blockers):
                yield DueFamily(family_id, one.name, due_on, reason, one.blockers)
        after = ids[-1]


def coming_families(session: Session, policy: RetentionPolicy, *, days: int = LOOKAHEAD_DAYS,
                    on: date | None = None) -> list[DueFamily]:
    """The families the runs of the next ``days`` days will take (or would, but for what blocks them)."""
    return list(due_families(session, (on or today()) + timedelta(days=days), policy))


# ---------------------------------------------------------------- holds


def hold_family(session: Session, actor, family: Family, reason: str) -> PrivacyHold:
    """Stop a family being anonymised or erased, for a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give the reason for the hold (for example debt recovery or an insurance claim).",
                           field="reason")
    if len(reason) > 300:
        raise InvalidInput("Keep the reason under 300 characters.", field="reason")
    lock(session, family)
    if session.get(FamilyAnonymisation, family.id) is not None:
        raise Refused("This family has already been anonymised: there is nothing left to hold.")
    if session.scalar(select(PrivacyHold).where(PrivacyHold.family_id == family.id)) is not None:
        raise Refused("This family is already on hold.")
    hold = PrivacyHold(family_id=family.id, reason=reason, created_by_id=actor.id if actor is not None else None)
    session.add(hold)
    session.flush()
    record(session, actor, "privacy.hold", family, f"Held family #{family.id} from anonymisation: {reason}")
    return hold


def release_hold(session: Session, actor, hold: PrivacyHold) -> None:
    """Let a held family be anonymised again when it falls due."""
    family_id = hold.family_id
    session.delete(hold)
    session.flush()
    record(session, actor, "privacy.hold_released", session.get(Family, family_id),
           f"Released the anonymisation hold on family #{family_id}")


# ---------------------------------------------------------------- anonymisation


@dataclass
class Anonymised:
    """What one family's anonymisation changed, counted (never the values)."""

    family_id: int
    counts: dict[str, int]


def _scrubber(names: set[str], phrases: set[str] = frozenset()):
    """A function that replaces each of ``names``, each part of a name, and each of ``phrases`` (notes typed
    about them), in any case and as whole words, with "(removed)": a payer's reference "HOPPER VIOLIN"
    names the Hoppers as surely as "Grace Hopper"."""
    names = {w.strip() for w in names if w and w.strip()}
    words = names | {part for w in names if "@" not in w for part in re.split(r"[\s,]+", w)}
    words |= {p.strip() for p in phrases if p and p.strip()}
    words = sorted({w for w in words if len(w) >= 3}, key=len, reverse=True)
    if not words:
        return lambda text: text
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)
    return lambda text: pattern.sub(REMOVED, text) if text else text


def _scrub_json(value, scrub, personal: bool):
    if isinstance(value, dict):
        return {k: (REMOVED if personal and k in PERSONAL_KEYS and v not in (None, "", [])
                    else _scrub_json(v, scrub, personal)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v, scrub, personal) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def _sha256(data: bytes | None) -> str:
    return hashlib.sha256(data or b"").hexdigest()


def anonymise_family(session: Session, actor, family: Family, *, cause: str = "retention",
                     as_of: date | None = None, policy: RetentionPolicy | None = None,
                     mail_since: datetime | None = None) -> Anonymised:
    """Replace a family's personal data with neutral values, keeping every figure; refused while anything
    stops it. For ``cause="retention"`` the family must also be due by ``as_of``. ``mail_since``: a run
    that has purged older emails searches the outbox only from then (the outbox has no index by address)."""
    lock(session, family)
    facts = facts_of(session, family)
    if facts.blockers:
        raise Refused(f"{family.name} cannot be anonymised: {'; '.join(facts.blockers)}.")
    if cause == "retention":
        due_on, _ = facts.due(policy or retention_policy(session))
        if due_on > (as_of or today()):
            raise Refused(f"{family.name} is not due for anonymisation until {due_on:%-d %B %Y}.")
    counts: dict[str, int] = {}
    fid = family.id
    pupils = session.execute(select(Pupil.id, Pupil.name).where(Pupil.family_id == fid)).all()
    pupil_ids = [p.id for p in pupils]
    loans = session.execute(select(Loan.id, Loan.instrument_id, Loan.return_note).where(
        or_(Loan.family_id == fid, Loan.pupil_id.in_(pupil_ids)) if pupil_ids else Loan.family_id == fid)).all()
    loan_ids = [loan.id for loan in loans]
    user = session.get(User, family.user_id) if family.user_id else None
    account = session.scalar(select(PayerAccount).where(PayerAccount.family_id == fid))

    # Every word that names them, wherever it was copied: replaced in text that is kept.
    words = {family.name, family.email, family.phone, *[p.name for p in pupils], *family.address.splitlines()}
    if user is not None:
        words |= {user.name, user.email}
    if account is not None:
        words |= {account.payer_name, account.payer_email, *account.payer_address.splitlines()}
    agreements = session.execute(select(Agreement.id, Agreement.signed_name, Agreement.created_at,
                                        Agreement.sha256, Agreement.signed_pdf)
                                 .where(Agreement.loan_id.in_(loan_ids))).all() if loan_ids else []
    notices = session.execute(select(Notice.id, Notice.recipient_name, Notice.recipient_email, Notice.as_of,
                                     Notice.pdf, Notice.mail_id)
                              .where(Notice.loan_id.in_(loan_ids))).all() if loan_ids else []
    words |= {a.signed_name for a in agreements} | {n.recipient_name for n in notices} | {
        n.recipient_email for n in notices}
    requests = session.execute(select(AccessRequest.id, AccessRequest.requester_name)
                               .where(AccessRequest.family_id == fid)).all()
    words |= {r.requester_name for r in requests}
    notes = {loan.return_note for loan in loans if loan.return_note}
    notes |= set(session.scalars(select(ParentRequest.note).where(ParentRequest.family_id == fid,
                                                                   ParentRequest.note != "")))
    scrub = _scrubber(words, notes)
    instrument_ids = sorted({loan.instrument_id for loan in loans})
    emails = {e for e in (family.email, user.email if user else "", account.payer_email if account else "",
                          *[n.recipient_email for n in notices]) if e}

    # The people.
    session.execute(update(Family).where(Family.id == fid).values(
        name=f"Family {fid}", email="", phone="", address=""))
    if pupils:  # "Pupil " || id, in one statement on both databases
        session.execute(update(Pupil).where(Pupil.family_id == fid).values(
            name=literal("Pupil ") + cast(Pupil.id, String), send=False))
    counts["pupils"] = len(pupils)
    if user is not None:
        session.execute(update(User).where(User.id == user.id).values(
            name=f"Parent of family {fid}", email=f"anonymised-{user.id}@invalid", password_hash="!",
            active=False, session_token=hashlib.sha256(f"gone-{user.id}".encode()).hexdigest()))
        session.execute(RememberToken.__table__.delete().where(RememberToken.user_id == user.id))
        session.execute(AccountToken.__table__.delete().where(AccountToken.user_id == user.id))
        counts["parent accounts"] = 1
    if account is not None:
        session.execute(update(PayerAccount).where(PayerAccount.id == account.id).values(
            payer_name="", payer_email="", payer_address=""))

    # Free text typed about them.
    if loan_ids:
        noted = [loan.id for loan in loans if loan.return_note]
        if noted:
            session.execute(update(Loan).where(Loan.id.in_(noted)).values(return_note=""))
        counts["loan notes"] = len(noted)
    if notes and instrument_ids:  # a return note is also the condition check made at the return
        checks = session.execute(select(ConditionCheck.id, ConditionCheck.note).where(
            ConditionCheck.instrument_id.in_(instrument_ids), ConditionCheck.note != "")).all()
        changed_checks = [dict(b_id=c.id, note=scrub(c.note)) for c in checks if scrub(c.note) != c.note]
        if changed_checks:
            _update_by_id(session, ConditionCheck, changed_checks)
    counts["parent requests"] = session.execute(
        update(ParentRequest).where(ParentRequest.family_id == fid).values(note="")).rowcount
    for request in requests:
        session.execute(update(AccessRequest).where(AccessRequest.id == request.id).values(
            requester_name=REMOVED, extension_reason=scrub(session.scalar(
                select(AccessRequest.extension_reason).where(AccessRequest.id == request.id)))))

    # Stored PDFs that name them: deleted, their date, kind and hash kept.
    removed = []
    for agreement in agreements:
        removed.append(dict(family_id=fid, kind="agreement", document_id=agreement.id,
                            dated=agreement.created_at.date(), sha256=agreement.sha256))
        if agreement.signed_pdf is not None:
            removed.append(dict(family_id=fid, kind="signed agreement", document_id=agreement.id,
                                dated=agreement.created_at.date(), sha256=_sha256(agreement.signed_pdf)))
        # Core update: the ORM's guard freezes a signed agreement; its hash still proves what was signed.
        session.execute(update(Agreement).where(Agreement.id == agreement.id).values(
            pdf=b"", signed_pdf=None, signed_name=REMOVED if agreement.signed_name else ""))
    for notice in notices:
        if notice.pdf is not None:
            removed.append(dict(family_id=fid, kind="notice", document_id=notice.id, dated=notice.as_of,
                                sha256=_sha256(notice.pdf)))
        session.execute(update(Notice).where(Notice.id == notice.id).values(
            recipient_name=f"Family {fid}", recipient_email="", pdf=None))
    if removed:
        session.execute(RemovedDocument.__table__.insert(), [dict(r, removed_at=utcnow()) for r in removed])
    counts["documents removed"] = len(removed)

    # Their emails in the outbox: the addresses, subjects and bodies go.
    mail_ids = {n.mail_id for n in notices if n.mail_id}
    if emails:
        mail_ids |= set(session.scalars(select(OutboxMessage.id).where(
            or_(*[OutboxMessage.recipients.contains(e) for e in emails]),
            *([OutboxMessage.created_at >= mail_since] if mail_since else []))).all())
    if mail_ids:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(mail_ids)).values(
            recipients=REMOVED, subject=REMOVED, message=b""))
    counts["emails"] = len(mail_ids)

    # The ledger's words (an invoice line's description names the child); its figures never change.
    entry_ids: list[int] = []
    if account is not None:
        entries = session.execute(select(LedgerEntry.id, LedgerEntry.reference, LedgerEntry.note)
                                  .where(LedgerEntry.account_id == account.id)).all()
        changed = [dict(b_id=e.id, reference=scrub(e.reference), note=scrub(e.note)) for e in entries
                   if (scrub(e.reference), scrub(e.note)) != (e.reference, e.note)]
        if changed:
            _update_by_id(session, LedgerEntry, changed)
        entry_ids = [e.id for e in entries]
        if entry_ids:
            lines = session.execute(select(InvoiceLine.id, InvoiceLine.description)
                                    .where(InvoiceLine.invoice_id.in_(entry_ids))).all()
            changed_lines = [dict(b_id=line.id, description=scrub(line.description)) for line in lines
                             if scrub(line.description) != line.description]
            if changed_lines:
                _update_by_id(session, InvoiceLine, changed_lines)
            bank = session.execute(select(BankLine.id, BankLine.reference)
                                   .where(BankLine.payment_id.in_(entry_ids))).all()
            changed_bank = [dict(b_id=b.id, reference=scrub(b.reference)) for b in bank
                            if scrub(b.reference) != b.reference]
            if changed_bank:
                _update_by_id(session, BankLine, changed_bank)
            counts["ledger texts"] = len(changed) + len(changed_lines) + len(changed_bank)

    # Old audit events that name them lose the names (the append-only trigger lets only the words change).
    counts["audit events"] = _redact_audit(session, scrub, {
        "family": [fid], "pupil": pupil_ids, "user_account": [user.id] if user else [],
        "loan": list(loan_ids), "agreement": [a.id for a in agreements], "notice": [n.id for n in notices],
        "payer_account": [account.id] if account else [], "access_request": [r.id for r in requests],
        "ledger_entry": entry_ids, "instrument": instrument_ids,
        "reservation": session.scalars(select(Reservation.id).where(Reservation.pupil_id.in_(pupil_ids))).all()
        if pupil_ids else []})

    session.add(FamilyAnonymisation(family_id=fid, cause=cause, by_id=actor.id if actor is not None else None))
    session.flush()
    record(session, actor, f"privacy.{'erased' if cause == 'erasure' else 'anonymised'}", family,
           f"{'Erased on request' if cause == 'erasure' else 'Anonymised after its retention period'}: "
           f"family #{fid}", {"fields": ["names", "emails", "phones", "addresses", "free text", "SEND flag",
                                         "stored PDFs"], "counts": counts})
    session.expire_all()  # the rows changed under the ORM's feet
    return Anonymised(fid, counts)


def _update_by_id(session: Session, model, rows: list[dict]) -> None:
    """Update each row (``b_id`` names it) with its own values, in one executemany."""
    table = model.__table__
    session.execute(update(table).where(table.c.id == bindparam("b_id")), rows)


def _redact_audit(session: Session, scrub, entities: dict[str, list[int]]) -> int:
    conditions = [(AuditEvent.entity_type == kind) & AuditEvent.entity_id.in_(ids)
                  for kind, ids in entities.items() if ids]
    if not conditions:
        return 0
    changed = []
    for event_id, kind, summary, changes in session.execute(
            select(AuditEvent.id, AuditEvent.entity_type, AuditEvent.summary, AuditEvent.changes)
            .where(or_(*conditions))):
        personal = kind in ("family", "pupil", "user_account", "payer_account", "access_request")
        new_summary, new_changes = scrub(summary), _scrub_json(changes or {}, scrub, personal)
        if (new_summary, new_changes) != (summary, changes or {}):
            changed.append(dict(b_id=event_id, summary=new_summary, changes=new_changes))
    if changed:
        _update_by_id(session, AuditEvent, changed)
    return len(changed)


def mail_cutoff(policy: RetentionPolicy, as_of: date) -> datetime:
    """Emails written before this are past the policy's days."""
    return datetime.combine(as_of - timedelta(days=policy.outbox_days), datetime.min.time())


def _old_mail(policy: RetentionPolicy, as_of: date):
    return (OutboxMessage.created_at < mail_cutoff(policy, as_of), OutboxMessage.status != MailStatus.QUEUED,
            OutboxMessage.recipients != REMOVED)


def purge_old_mail(session: Session, policy: RetentionPolicy, as_of: date) -> int:
    """Empty the emails older than the policy's days (sent or failed; queued ones still go): their
    addresses, subjects and bodies. The Mail page keeps when each was written and how it went."""
    return session.execute(update(OutboxMessage).where(*_old_mail(policy, as_of)).values(
        recipients=REMOVED, subject=REMOVED, message=b"")).rowcount


def old_mail_count(session: Session, policy: RetentionPolicy, as_of: date) -> int:
    return session.scalar(select(func.count(OutboxMessage.id)).where(*_old_mail(policy, as_of))) or 0


def erase_family(session: Session, actor, family: Family) -> Anonymised:
    """Erase a family now, on request: the same rules as a run, without waiting for the retention period."""
    return anonymise_family(session, actor, family, cause="erasure")


def get_family(session: Session, family_id: int) -> Family:
    family = session.get(Family, family_id)
    if family is None:
        raise NotFound(f"There is no family number {family_id}.", field="family_id")
    return family


# ---------------------------------------------------------------- subject access requests


def record_access_request(session: Session, actor, *, family_id: int, requester_name: str,
                          relationship_to_child: str, received_on: date) -> AccessRequest:
    """Record a subject access request; it is due one calendar month after it was received."""
    family = get_family(session, family_id)
    if session.get(FamilyAnonymisation, family.id) is not None:
        raise Refused("This family has been anonymised: nothing about it is held any more.", field="family_id")
    if received_on > today():
        raise InvalidInput("The date received cannot be in the future.", field="received_on")
    request = AccessRequest(family_id=family.id, requester_name=requester_name.strip(),
                            relationship_to_child=relationship_to_child.strip(), received_on=received_on,
                            due_on=add_months(received_on, 1), created_by_id=actor.id if actor else None)
    session.add(request)
    session.flush()
    record(session, actor, "privacy.access_request", request,
           f"Subject access request about family #{family.id}, due {request.due_on:%-d %b %Y}")
    return request


def extend_access_request(session: Session, actor, request: AccessRequest, *, months: int,
                          reason: str) -> AccessRequest:
    """Extend the deadline by one or two more months, for a reason (a complex request)."""
    reason = (reason or "").strip()
    if request.answered_on is not None:
        raise Refused("This request has been answered already.")
    if months not in (1, 2):
        raise InvalidInput("A request can be extended by one or two months.", field="months")
    if not reason:
        raise InvalidInput("Say why the request needs longer.", field="reason")
    request.extended_to, request.extension_reason = add_months(request.due_on, months), reason
    session.flush()
    record(session, actor, "privacy.access_request_extended", request,
           f"Extended to {request.extended_to:%-d %b %Y}", {"months": months})
    return request


def answer_access_request(session: Session, actor, request: AccessRequest, on: date | None = None) -> None:
    """Mark a request answered (the export sent or handed over)."""
    if request.answered_on is not None:
        raise Refused("This request has been answered already.")
    request.answered_on = on or today()
    session.flush()
    record(session, actor, "privacy.access_request_answered", request, "Answered")


def open_access_requests(session: Session) -> list[AccessRequest]:
    """Unanswered requests, the nearest deadline first."""
    deadline = func.coalesce(AccessRequest.extended_to, AccessRequest.due_on)
    return list(session.scalars(select(AccessRequest).where(AccessRequest.answered_on.is_(None))
                                .order_by(deadline, AccessRequest.id)))


def answered_access_requests(session: Session, limit: int = 50) -> list[AccessRequest]:
    return list(session.scalars(select(AccessRequest).where(AccessRequest.answered_on.is_not(None))
                                .order_by(AccessRequest.answered_on.desc(), AccessRequest.id.desc()).limit(limit)))


# ---------------------------------------------------------------- a run (many transactions: one per family)


@dataclass
class RunResult:
    anonymised: list[int] = field(default_factory=list)
    skipped: list[DueFamily] = field(default_factory=list)
    mail_purged: int = 0
    failed: tuple[int, str] | None = None


def run_anonymisation(session: Session, actor, as_of: date | None = None, *, dry_run: bool = False,
                      progress=None) -> RunResult:
    """Anonymise every family due by ``as_of``, each in its own transaction, and purge old emails.

    A failure rolls back only the family it happened in and stops the run; a rerun finishes the rest.
    Families already anonymised are never looked at again, so a second run changes nothing.
    """
    as_of = check_as_of(as_of)
    policy = retention_policy(session)
    result = RunResult()
    # Old emails first: then each family's own need be looked for only among the recent ones.
    if dry_run:
        result.mail_purged = old_mail_count(session, policy, as_of)
    else:
        result.mail_purged = purge_old_mail(session, policy, as_of)
        session.commit()
    for due in due_families(session, as_of, policy):
        if due.blockers:
            result.skipped.append(due)
            continue
        if dry_run:
            result.anonymised.append(due.family_id)
            continue
        try:
            anonymise_family(session, actor, session.get(Family, due.family_id), as_of=as_of, policy=policy,
                             mail_since=mail_cutoff(policy, as_of))
            session.commit()
        except Exception as error:  # any failure: this family rolls back whole, the run stops and says so
            session.rollback()
            message = error.message if isinstance(error, LoanServiceError) else f"{type(error).__name__}: {error}"
            result.failed = (due.family_id, message)
            return result
        result.anonymised.append(due.family_id)
        if progress is not None:
            progress(1)
    return result


# ---------------------------------------------------------------- the privacy notice


def current_notice(session: Session) -> PrivacyNotice | None:
    return session.scalar(select(PrivacyNotice).order_by(PrivacyNotice.version.desc()).limit(1))


def save_notice(session: Session, actor, text: str) -> PrivacyNotice:
    """Publish the privacy notice as its next version; earlier versions are kept as they were accepted."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("Write the privacy notice.", field="text")
    latest = current_notice(session)
    if latest is not None and latest.text == text:
        raise InvalidInput("Nothing has changed since the last version.", field="text")
    notice = PrivacyNotice(version=(latest.version if latest else 0) + 1, text=text,
                           created_by_id=actor.id if actor is not None else None)
    session.add(notice)
    session.flush()
    record(session, actor, "privacy.notice_published", notice, f"Published privacy notice v{notice.version}")
    return notice


def accepted_notice(session: Session, user) -> PrivacyNoticeAcceptance | None:
    """The latest version of the privacy notice ``user`` accepted."""
    return session.scalar(select(PrivacyNoticeAcceptance).join(PrivacyNotice)
                          .where(PrivacyNoticeAcceptance.user_id == user.id)
                          .order_by(PrivacyNotice.version.desc()).limit(1))


@parent_registered.connect
def _keep_the_accepted_notice(user, *, session: Session) -> None:
    """A parent who registers accepts the notice shown on the registration page: keep which version."""
    notice = current_notice(session)
    if notice is not None:
        session.add(PrivacyNoticeAcceptance(user_id=user.id, notice_id=notice.id))
        session.flush()
