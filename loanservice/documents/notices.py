"""Overdue notices: which are due (days of term overdue), the letters, and sending them once each.

Stages go in order: a loan (or set loan) gets the first stage it has not had, however late it is
first noticed, and each later stage follows the previous letter by the gap between the stages' days
(counted in days of term), so a missed run or a loan recorded late never skips the reminder.

A notice row is claimed (inserted, pending) before anything is sent, and the unique
(loan, stage) constraint makes sure the same stage is never sent twice, however runs overlap.
Each letter then moves pending -> sending -> sent (or failed) in its own commit, so a run that
stops midway leaves a record of what went; a rerun retries the pending and failed ones only.
Functions here take the session first; ``send_notices`` commits as it goes because each
letter sent is a fact that must outlive a later failure (it is called by the CLI and the view).
"""
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ..audit.services import record
from ..borrowers.models import Pupil
from ..errors import InvalidInput
from ..inventory.models import Instrument, InstrumentStatus
from ..loans.calendar import DaysOff, TermInUse, after_days_of_term, days_of_term, days_off
from ..loans.models import AcademicTerm, Loan, LoanStatus
from ..mail import Attachment, MailStatus, OutboxMessage, queue_mail
from ..mail.sender import resend, send_queued
from ..money import services as money
from ..money.models import Allocation, EntryKind, LedgerEntry
from ..sets.models import SetLoan
from ..signals import mail_failed, mail_sent, term_removing
from ..timeutil import today, utcnow
from .models import Notice, NoticeChannel, NoticeKind, NoticeLetter, NoticeStage, NoticeStatus
from .render import LetterChunk, LetterPress, RenderedLetters, concatenate_pdfs, render_letters
from .services import DocumentError, Hub, hirer_of, postal_address

log = logging.getLogger(__name__)

USUAL_STAGES = {
    NoticeKind.LOAN: (("Reminder", 7, NoticeLetter.REMINDER, None),
                      ("Final notice", 21, NoticeLetter.FINAL, 14),
                      ("Replacement cost", 42, NoticeLetter.REPLACEMENT, None)),
    NoticeKind.INVOICE: (("Payment reminder", 7, NoticeLetter.REMINDER, None),
                         ("Second payment reminder", 21, NoticeLetter.REMINDER, None),
                         ("Final notice to pay", 35, NoticeLetter.FINAL, 14)),
}
LETTER_TEMPLATE = "documents/notice.html"


# ---------------------------------------------------------------- stages


def stages(session: Session, kind: NoticeKind = NoticeKind.LOAN) -> list[NoticeStage]:
    """The stages of one kind of notice, in order."""
    return list(session.scalars(select(NoticeStage).where(NoticeStage.kind == kind)
                                .order_by(NoticeStage.days_overdue)))


def _days_wording(kind: NoticeKind, days: int) -> str:
    if kind == NoticeKind.INVOICE:
        return f"{days} days after an invoice falls due, unpaid"
    return f"{days} days overdue (not counting school holidays)"


def save_stage(session: Session, actor, *, name: str, days_overdue: int, letter: NoticeLetter,
               return_within_days: int | None = None, stage: NoticeStage | None = None,
               kind: NoticeKind = NoticeKind.LOAN) -> NoticeStage:
    """Add or change a stage of chasing overdue loans or unpaid invoices."""
    name = name.strip()
    if not name:
        raise InvalidInput("Name the stage.", field="name")
    if days_overdue < 1:
        raise InvalidInput("A stage starts at least one day after the due date.", field="days_overdue")
    if kind == NoticeKind.INVOICE and letter == NoticeLetter.REPLACEMENT:
        raise InvalidInput("An unpaid invoice gets a reminder or a final notice, not a replacement-cost letter.",
                           field="letter")
    if stage is not None and stage.kind != kind and session.scalar(
            select(Notice.id).where(Notice.stage_id == stage.id).limit(1)) is not None:
        raise InvalidInput(f"Letters were sent at the stage {stage.name}: it keeps chasing "
                           f"{stage.kind.label.lower()}. Add a new stage instead.", field="kind")
    clash = session.scalar(select(NoticeStage.id).where(NoticeStage.kind == kind,
                                                        NoticeStage.days_overdue == days_overdue))
    if clash is not None and (stage is None or clash != stage.id):
        of = " for unpaid invoices" if kind == NoticeKind.INVOICE else ""
        raise InvalidInput(f"Another stage{of} is already at {days_overdue} days.", field="days_overdue")
    stage = stage or NoticeStage()
    session.add(stage)
    stage.kind, stage.name, stage.days_overdue, stage.letter = kind, name[:60], days_overdue, letter
    stage.return_within_days = return_within_days or None
    session.flush()
    record(session, actor, "notices.stage", stage, f"Notice stage {name} at {_days_wording(kind, days_overdue)}",
           {"kind": kind.value, "letter": letter.value, "return_within_days": return_within_days})
    return stage


def remove_stage(session: Session, actor, stage: NoticeStage) -> None:
    """Remove a stage no letter was ever sent for; one that was stays, as each loan's history names it."""
    used = session.scalar(select(func.count()).select_from(Notice).where(Notice.stage_id == stage.id))
    if used:
        raise InvalidInput(f"{used} {'letter was' if used == 1 else 'letters were'} sent at the stage {stage.name}, "
                           "and loans' histories name it: change its days or wording instead.")
    record(session, actor, "notices.stage_removed", stage, f"Removed the notice stage {stage.name}",
           {"days_overdue": stage.days_overdue, "letter": stage.letter})
    session.delete(stage)
    session.flush()


def add_usual_stages(session: Session, actor, kind: NoticeKind = NoticeKind.LOAN) -> list[NoticeStage]:
    """The common scheme. Overdue loans: a reminder at 7 days overdue, a final notice at 21, replacement
    cost at 42 (days not counting school holidays). Unpaid invoices: reminders 7 and 21 days after the
    due date, a final notice at 35."""
    if stages(session, kind):
        raise InvalidInput("Stages are already set; change them one by one.")
    return [save_stage(session, actor, name=n, days_overdue=d, letter=k, return_within_days=r, kind=kind)
            for n, d, k, r in USUAL_STAGES[kind]]


# ---------------------------------------------------------------- what is due


@dataclass
class DueNotice:
    """A notice that a run would send: which stage, about what, to whom and how."""

    stage: NoticeStage
    days_overdue: int
    recipient_name: str
    recipient_email: str
    loan: Loan | None = None
    set_loan: SetLoan | None = None
    items: list[Loan] = field(default_factory=list)
    invoice: LedgerEntry | None = None
    outstanding: Decimal | None = None  # what is left to pay on ``invoice``

    @property
    def channel(self) -> NoticeChannel:
        return NoticeChannel.EMAIL if self.recipient_email else NoticeChannel.POST

    @property
    def address(self) -> str:
        """The postal address a letter by post would carry (empty: it cannot be posted as it is)."""
        return subject_address(self.loan, self.set_loan, self.invoice)

    @property
    def subject_label(self) -> str:
        if self.invoice is not None:
            return f"Invoice {self.invoice.number}, £{self.outstanding:,.2f} unpaid"
        if self.set_loan is not None:
            return str(self.set_loan)
        return f"{self.loan.instrument.asset_tag} {self.loan.instrument.description}"


def subject_address(loan: Loan | None, set_loan: SetLoan | None, invoice: LedgerEntry | None = None) -> str:
    """The postal address for letters about a loan (its hirer's), a set loan (the school's) or an invoice
    (its payer's); empty if none."""
    address = (invoice.account.address if invoice is not None
               else set_loan.school.address if set_loan is not None else postal_address(loan))
    return (address or "").strip()


NO_ADDRESS = "No postal address on record: held back, not printed. Add the address and run again."


@dataclass
class _Letters:
    """The letters already claimed about one loan or set loan."""

    stages: list[NoticeStage] = field(default_factory=list)
    last_as_of: date | None = None
    all_sent: bool = True


def _stage_due(all_stages: list[NoticeStage], days: int, had: _Letters | None, as_of: date,
               off: DaysOff | None) -> NoticeStage | None:
    """The next stage for a loan ``days`` overdue, if it is due on ``as_of``: the first stage when it has
    had none; otherwise the stage after the latest it had, once as many days of term have passed since
    that letter as lie between the two stages. Nothing while an earlier letter is still unsent."""
    if had is None or not had.stages:
        return all_stages[0] if days >= all_stages[0].days_overdue else None
    if not had.all_sent:
        return None
    latest = max(had.stages, key=lambda s: s.days_overdue)
    later = [s for s in all_stages if s.days_overdue > latest.days_overdue]
    if not later:
        return None
    following = later[0]
    since = days_of_term(had.last_as_of, as_of, off) if off is not None else (as_of - had.last_as_of).days
    if days >= following.days_overdue and since >= following.days_overdue - latest.days_overdue:
        return following
    return None


def _letters_had(session: Session) -> dict[tuple[str, int], _Letters]:
    """The letters claimed so far, by ("loan", id), ("set", id) or ("invoice", id)."""
    by_stage = {s.id: s for s in session.scalars(select(NoticeStage))}
    had: dict[tuple[str, int], _Letters] = {}
    for loan_id, set_loan_id, invoice_id, stage_id, as_of, status in session.execute(
            select(Notice.loan_id, Notice.set_loan_id, Notice.invoice_id, Notice.stage_id, Notice.as_of,
                   Notice.status)):
        key = (("loan", loan_id) if loan_id is not None else ("set", set_loan_id) if set_loan_id is not None
               else ("invoice", invoice_id))
        letters = had.setdefault(key, _Letters())
        letters.stages.append(by_stage[stage_id])
        letters.last_as_of = max(filter(None, (letters.last_as_of, as_of)))
        letters.all_sent = letters.all_sent and status == NoticeStatus.SENT
    return had


def chased_set_loans(as_of: date):
    """The set loans to chase on ``as_of``: items still out, or items reported missing and not found since
    (the school owes their replacement cost, so they are chased like any instrument not returned)."""
    missing = (select(Loan.set_loan_id).join(Loan.instrument)
               .where(Loan.status == LoanStatus.LOST, Loan.set_loan_id.is_not(None),
                      Instrument.status == InstrumentStatus.MISSING))
    return select(SetLoan).where(or_(SetLoan.closed_on.is_(None), SetLoan.id.in_(missing)), SetLoan.due_on < as_of)


def due_notices(session: Session, as_of: date) -> list[DueNotice]:
    """Every notice due on ``as_of``: individual loans to their hirer, classroom sets to the school, unpaid
    invoices to their payer."""
    had = _letters_had(session)
    return _due_loan_notices(session, as_of, had) + _due_invoice_notices(session, as_of, had)


def _due_invoice_notices(session: Session, as_of: date, had: dict) -> list[DueNotice]:
    """Reminders due on ``as_of`` for invoices still unpaid (in part) the stages' days after their due date.
    A paid invoice gets none: what is left on it is worked out from the ledger as the run decides."""
    all_stages = stages(session, NoticeKind.INVOICE)
    if not all_stages:
        return []
    earliest_due = as_of - timedelta(days=all_stages[0].days_overdue)
    paid = (select(func.coalesce(func.sum(Allocation.amount), 0)).where(Allocation.debit_id == LedgerEntry.id)
            .scalar_subquery())
    rows = session.execute(
        select(LedgerEntry, LedgerEntry.amount - paid)
        .where(LedgerEntry.kind == EntryKind.INVOICE, LedgerEntry.due_on <= earliest_due,
               LedgerEntry.amount - paid > 0)
        .options(joinedload(LedgerEntry.account)).order_by(LedgerEntry.due_on, LedgerEntry.number))
    due: list[DueNotice] = []
    for invoice, left in rows:
        days = (as_of - invoice.due_on).days
        stage = _stage_due(all_stages, days, had.get(("invoice", invoice.id)), as_of, None)
        if stage is not None:
            due.append(DueNotice(stage=stage, days_overdue=days, recipient_name=invoice.account.name,
                                 recipient_email=invoice.account.email or "", invoice=invoice,
                                 outstanding=Decimal(left).quantize(Decimal("0.01"))))
    return due


def _due_loan_notices(session: Session, as_of: date, had: dict) -> list[DueNotice]:
    all_stages = stages(session)
    if not all_stages:
        return []
    off = days_off(session)
    earliest_due = as_of - timedelta(days=all_stages[0].days_overdue)
    due: list[DueNotice] = []
    loans = session.scalars(
        # Only loans issued (open): one still waiting for its agreement is not out, so not chased.
        select(Loan).where(Loan.closed_on.is_(None), Loan.status == LoanStatus.OPEN, Loan.set_loan_id.is_(None),
                           Loan.due_on <= earliest_due)
        .options(joinedload(Loan.instrument), joinedload(Loan.pupil).joinedload(Pupil.family),
                 joinedload(Loan.family), joinedload(Loan.school), joinedload(Loan.other_borrower))
        .order_by(Loan.due_on, Loan.id))
    for loan in loans:
        days = days_of_term(loan.due_on, as_of, off)
        stage = _stage_due(all_stages, days, had.get(("loan", loan.id)), as_of, off)
        if stage is not None:
            name, email = hirer_of(loan)
            due.append(DueNotice(stage=stage, days_overdue=days, recipient_name=name, recipient_email=email,
                                 loan=loan))
    set_loans = session.scalars(
        chased_set_loans(as_of).where(SetLoan.due_on <= earliest_due)
        .options(joinedload(SetLoan.school), joinedload(SetLoan.classroom_set))
        .order_by(SetLoan.due_on, SetLoan.id))
    for set_loan in set_loans:
        days = days_of_term(set_loan.due_on, as_of, off)
        stage = _stage_due(all_stages, days, had.get(("set", set_loan.id)), as_of, off)
        if stage is not None:
            school = set_loan.school
            due.append(DueNotice(stage=stage, days_overdue=days, recipient_name=school.contact_name or school.name,
                                 recipient_email=school.contact_email or "", set_loan=set_loan))
    return due


@term_removing.connect
def _refuse_if_letters_counted_in(term: AcademicTerm, *, session: Session) -> None:
    """A term stays while overdue letters counted its days (their loan fell due by its end and they
    were dated after it began): removing it would change what those letters said."""
    counted_in = (Notice.as_of >= term.starts_on)
    letters = (session.scalar(select(func.count()).select_from(Notice).join(Notice.loan)
                              .where(counted_in, Loan.due_on <= term.ends_on))
               + session.scalar(select(func.count()).select_from(Notice).join(Notice.set_loan)
                                .where(counted_in, SetLoan.due_on <= term.ends_on)))
    if letters:
        raise TermInUse(f"{term.name} cannot be removed: {letters} overdue {'letter' if letters == 1 else 'letters'} "
                        "counted its days. Change its name or dates instead.")


def last_run_date(session: Session) -> date | None:
    return session.scalar(select(func.max(Notice.as_of)))


def check_run_date(session: Session, as_of: date) -> None:
    """Refuse a run as of a date after today, or before the last run.

    A future date would send letters for loans not yet that far overdue (replacement costs for
    loans not even due) and, as runs cannot go back, block every normal run until that date.
    """
    if as_of > today():
        raise InvalidInput(f"Notices cannot be sent as of {as_of:%-d %b %Y}: that is after today "
                           f"({today():%-d %b %Y}). Choose today or an earlier date.", field="as_of")
    last = last_run_date(session)
    if last is not None and as_of < last:
        raise InvalidInput(f"Notices were already run as of {last:%-d %b %Y}; a run cannot go back before it.",
                           field="as_of")


def claim_notices(session: Session, actor, due: list[DueNotice], as_of: date) -> list[Notice]:
    """Record the due notices as pending (claimed): from here the same stage cannot be sent again."""
    check_run_date(session, as_of)
    notices = [Notice(loan=d.loan, set_loan=d.set_loan, invoice=d.invoice, stage=d.stage, as_of=as_of,
                      days_overdue=d.days_overdue,
                      channel=d.channel, recipient_name=d.recipient_name[:200],
                      recipient_email=d.recipient_email, status=NoticeStatus.PENDING) for d in due]
    session.add_all(notices)
    try:
        session.flush()
    except IntegrityError as error:
        raise DocumentError("Another run is sending notices now; try again when it has finished.") from error
    if notices:
        record(session, actor, "notices.claimed", notices[0], f"{len(notices)} overdue notices as of {as_of}",
               {"count": len(notices), "as_of": as_of})
    return notices


def unsent_notices(session: Session) -> list[Notice]:
    """Notices claimed but not sent (a run stopped, or the mail server refused them), oldest first."""
    return list(session.scalars(
        select(Notice).where(Notice.status.in_([NoticeStatus.PENDING, NoticeStatus.FAILED]))
        .options(joinedload(Notice.loan), joinedload(Notice.set_loan), joinedload(Notice.invoice))
        .order_by(Notice.id)))


def uncertain_notices(session: Session) -> list[Notice]:
    """Notices handed to the mail server when a run (before the outbox) stopped: nobody knows whether they went."""
    return list(session.scalars(select(Notice).where(Notice.status == NoticeStatus.SENDING, Notice.mail_id.is_(None))
                                .order_by(Notice.id)))


def queued_notices(session: Session) -> list[Notice]:
    """Notices whose email waits in the outbox (a first try, or another after a failure that may pass)."""
    return list(session.scalars(select(Notice).where(Notice.status == NoticeStatus.SENDING,
                                                     Notice.mail_id.is_not(None)).order_by(Notice.id)))


@mail_sent.connect
def _notice_mail_sent(message: OutboxMessage, session: Session) -> None:
    session.execute(update(Notice).where(Notice.mail_id == message.id)
                    .values(status=NoticeStatus.SENT, sent_at=message.sent_at, error=""),
                    execution_options={"synchronize_session": False})


@mail_failed.connect
def _notice_mail_failed(message: OutboxMessage, session: Session) -> None:
    session.execute(update(Notice).where(Notice.mail_id == message.id)
                    .values(status=NoticeStatus.FAILED, error=message.error),
                    execution_options={"synchronize_session": False})


# ---------------------------------------------------------------- letters


def replacement_value(instrument: Instrument) -> Decimal | None:
    return instrument.replacement_value if instrument.replacement_value is not None else instrument.purchase_cost


def letter_context(session: Session, notice: Notice, hub: Hub, off: DaysOff | None = None) -> dict:
    """Plain data for one letter. ``off``: the calendar's days off, when the caller has them already.

    The date to return by gives the stage's days in days of term: a final notice sent just before
    a holiday or half-term does not fall due while the schools are closed.
    """
    stage = notice.stage
    if notice.invoice is not None:
        return _invoice_letter_context(session, notice)
    if stage.return_within_days and off is None:
        off = days_off(session)
    context = {
        "notice_id": notice.id, "stage_name": stage.name, "letter": stage.letter, "as_of": notice.as_of,
        "days_overdue": notice.days_overdue, "recipient_name": notice.recipient_name,
        "return_by": (after_days_of_term(notice.as_of, stage.return_within_days, off)
                      if stage.return_within_days else None),
        # A replacement-cost letter mentions earlier letters only when one was sent (stages reached
        # together at the first run are skipped, so it may be the first letter the hirer gets).
        "earlier_letters": stage.letter == NoticeLetter.REPLACEMENT and _earlier_letter_sent(session, notice),
    }
    if notice.loan is not None:
        loan = notice.loan
        context.update(
            to_school=False, pupil_name=loan.pupil.name if loan.pupil else "", due_on=loan.due_on,
            address=postal_address(loan), instruments=[_letter_item(loan.instrument)],
            total_replacement=replacement_value(loan.instrument))
    else:
        set_loan = notice.set_loan
        items = list(session.scalars(
            select(Loan).join(Loan.instrument)
            .where(Loan.set_loan_id == set_loan.id,
                   or_(Loan.closed_on.is_(None),
                       (Loan.status == LoanStatus.LOST) & (Instrument.status == InstrumentStatus.MISSING)))
            .options(joinedload(Loan.instrument)).order_by(Instrument.asset_tag)))
        out = [loan for loan in items if loan.closed_on is None]
        missing = [loan for loan in items if loan.closed_on is not None]
        values = [loan.replacement_owed if loan.closed_on is not None and loan.replacement_owed is not None
                  else replacement_value(loan.instrument) for loan in items]
        context.update(
            to_school=True, school_name=set_loan.school.name, address=set_loan.school.address,
            set_name=set_loan.classroom_set.name, due_on=set_loan.due_on,
            instruments=[_letter_item(loan.instrument) for loan in out]
            + [_letter_item(loan.instrument, missing_on=loan.closed_on, owed=loan.replacement_owed)
               for loan in missing],
            out_count=len(out), missing_count=len(missing),
            total_replacement=sum((v for v in values if v is not None), Decimal("0.00")) if items else None)
    return context


def _invoice_letter_context(session: Session, notice: Notice) -> dict:
    """Plain data for a reminder about an unpaid invoice: the invoice, what is left to pay, by when, and how
    (the hub's bank details and the account's reference). The date to pay by is in calendar days."""
    invoice, stage = notice.invoice, notice.stage
    account = invoice.account
    return {"notice_id": notice.id, "stage_name": stage.name, "letter": stage.letter, "as_of": notice.as_of,
            "days_overdue": notice.days_overdue, "recipient_name": notice.recipient_name,
            "address": account.address, "invoice_number": invoice.number, "invoice_date": invoice.posted_on,
            "due_on": invoice.due_on, "total": invoice.amount, "outstanding": money.invoice_left(session, invoice),
            "term": invoice.term.name if invoice.term is not None else "",
            "return_by": (notice.as_of + timedelta(days=stage.return_within_days)
                          if stage.return_within_days else None),
            "how_to_pay": money.how_to_pay(current_app.config, account)}


def _earlier_letter_sent(session: Session, notice: Notice) -> bool:
    """Whether a letter of an earlier stage about the same loan or set was sent."""
    subject = (Notice.loan_id == notice.loan_id if notice.loan_id is not None
               else Notice.set_loan_id == notice.set_loan_id if notice.set_loan_id is not None
               else Notice.invoice_id == notice.invoice_id)
    return session.scalar(
        select(Notice.id).join(Notice.stage)
        .where(subject, Notice.id != notice.id, Notice.status == NoticeStatus.SENT,
               NoticeStage.days_overdue < notice.stage.days_overdue).limit(1)) is not None


def _letter_item(instrument: Instrument, *, missing_on: date | None = None, owed: Decimal | None = None) -> dict:
    """One instrument as a letter lists it; ``missing_on``: the day the school reported it missing."""
    return {"tag": instrument.asset_tag, "type": instrument.type.name, "size": instrument.size,
            "make": instrument.make, "serial": instrument.serial_number, "missing_on": missing_on,
            "replacement": owed if owed is not None else replacement_value(instrument)}


def load_for_letters(session: Session, notices: Sequence[Notice]) -> None:
    """Load (or refresh, after a commit expired them) what the letters of ``notices`` need, in one query."""
    ids = [inspect(n).identity[0] for n in notices]
    if ids:
        session.scalars(select(Notice).where(Notice.id.in_(ids)).options(
            joinedload(Notice.loan).options(joinedload(Loan.instrument),
                                            joinedload(Loan.pupil).joinedload(Pupil.family),
                                            joinedload(Loan.family), joinedload(Loan.school)),
            joinedload(Notice.set_loan).options(joinedload(SetLoan.school), joinedload(SetLoan.classroom_set)),
            joinedload(Notice.invoice).options(joinedload(LedgerEntry.account), joinedload(LedgerEntry.term)),
        )).unique().all()


def notice_letter_chunks(session: Session, notices: Sequence[Notice], hub: Hub, press: LetterPress, *,
                         merged: bool = False) -> Iterator[tuple[list[Notice], LetterChunk]]:
    """The notices' letters chunk by chunk, in order, each with the notices it is for.

    Chunks are laid out by ``press``'s worker processes while the caller sends the previous
    ones; each notice keeps its own PDF (``notice.pdf``, flushed here).
    """
    off = days_off(session)
    for part in press.chunks(LETTER_TEMPLATE, notices, merged=merged, hub=hub,
                             letter=lambda n: letter_context(session, n, hub, off),
                             prepare=lambda part: load_for_letters(session, part)):
        chunk_notices = list(notices[part.start:part.start + len(part.letters)])
        for notice, pdf in zip(chunk_notices, part.letters, strict=True):
            notice.pdf = pdf
        session.flush()
        yield chunk_notices, part


def render_notice_letters(session: Session, notices: list[Notice], hub: Hub, *, merged: bool = False,
                          press: LetterPress | None = None) -> RenderedLetters:
    """Each notice's letter as its own PDF (kept on the notice); optionally all of them as one print file."""
    result, wholes = RenderedLetters(), []
    with press or LetterPress() as own:
        for _, part in notice_letter_chunks(session, notices, hub, press or own, merged=merged):
            result.letters.extend(part.letters)
            wholes.append(part.merged)
    if merged and wholes:
        result.merged = concatenate_pdfs(wholes)
    return result


def notice_subject(notice: Notice, hub: Hub) -> str:
    if notice.invoice is not None:
        return f"{notice.stage.name}: invoice {notice.invoice.number} is unpaid ({hub.name})"
    what = notice.set_loan.classroom_set.name if notice.set_loan else notice.loan.instrument.description
    return f"{notice.stage.name}: {what} is overdue ({hub.name})"


def notice_email_body(session: Session, notice: Notice, hub: Hub, off: DaysOff | None = None) -> str:
    """The email that carries a letter: what is overdue and what to do, in words, with the letter attached."""
    letter = letter_context(session, notice, hub, off)
    if notice.invoice is not None:
        return _invoice_email_body(notice, letter, hub)
    items = "\n".join(
        f"  {i['tag']}  {i['type']}{' ' + i['size'] if i['size'] else ''}"
        + (f", serial {i['serial']}" if i["serial"] else "")
        + (f" (reported missing on {i['missing_on']:%-d %b %Y})" if i.get("missing_on") else "")
        for i in letter["instruments"])
    several = len(letter["instruments"]) > 1
    if letter["to_school"]:
        what = f"{letter['set_name']} was due back from {letter['school_name']} on {letter['due_on']:%-d %b %Y}"
    else:
        lent_for = f", lent for {letter['pupil_name']}," if letter["pupil_name"] else ""
        what = f"The instrument below{lent_for} was due back on {letter['due_on']:%-d %b %Y}"
    them = "them" if several else "it"
    if letter["letter"] == NoticeLetter.REPLACEMENT:
        cost = f" of £{letter['total_replacement']:,.2f}" if letter["total_replacement"] is not None else ""
        todo = (f"As {'these items have' if several else 'it has'} not been returned, we now ask you to pay the "
                f"replacement cost{cost}, as set out in the loan agreement. If you return {them} in good "
                "condition, we will cancel this charge.")
    elif letter["return_by"] is not None:
        todo = f"Please return {them} by {letter['return_by']:%-d %b %Y}. {hub.return_instructions}"
    else:
        todo = f"Please return {them} as soon as you can. {hub.return_instructions}"
    return (f"Dear {notice.recipient_name},\n\n"
            f"{notice.stage.name}: {what}, and is now {letter['days_overdue']} days overdue "
            f"(not counting school holidays).\n\n{items}\n\n"
            f"What to do: {todo.strip()}\n\n"
            f"If you have already returned {them}, thank you, and please ignore this message. To renew the loan, "
            f"or if it has been lost or stolen, contact us: {hub.contact}\n\n"
            f"The letter is attached ({notice.stage.name.lower()}, PDF).\n\n{hub.name}\n{hub.contact}\n")


def _invoice_email_body(notice: Notice, letter: dict, hub: Hub) -> str:
    """A reminder about an unpaid invoice, in words: which invoice, what is left, how to pay and the reference."""
    bank = "\n".join(f"  {line}" for line in letter["how_to_pay"].bank_lines)
    pay_by = f" by {letter['return_by']:%-d %b %Y}" if letter["return_by"] else ""
    how = (f"Please pay £{letter['outstanding']:,.2f}{pay_by} by bank transfer to:\n{bank}\n" if bank
           else f"Please pay £{letter['outstanding']:,.2f}{pay_by}: contact us to pay, {hub.contact}\n")
    final = ("This is a final notice: if it is not paid, the hub may stop new loans to the account and pass the "
             "debt on for recovery.\n\n" if letter["letter"] == NoticeLetter.FINAL else "")
    return (f"Dear {notice.recipient_name},\n\n"
            f"{notice.stage.name}: invoice {letter['invoice_number']} of {letter['invoice_date']:%-d %b %Y} "
            f"(£{letter['total']:,.2f}) was due by {letter['due_on']:%-d %b %Y}, and £{letter['outstanding']:,.2f} "
            f"of it is still unpaid.\n\n{how}"
            f"Quote your account reference {letter['how_to_pay'].reference} so that we know the payment is yours.\n\n"
            f"{final}If you have paid in the last few days, thank you, and please ignore this message. "
            f"Questions: {hub.contact}\n\n"
            f"The letter is attached ({notice.stage.name.lower()}, PDF).\n\n{hub.name}\n{hub.contact}\n")


def print_file_name(as_of: date) -> str:
    return f"letters-{as_of.isoformat()}.pdf"


# ---------------------------------------------------------------- a run


@dataclass
class RunResult:
    claimed: int = 0
    queued: int = 0  # emails in the outbox when the letters were done (this run's, and earlier runs' not sent yet)
    emailed: int = 0
    printed: int = 0
    failed: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)  # letters by post with no address: not printed
    uncertain: int = 0
    print_file: bytes | None = None


def send_notices(session: Session, actor, as_of: date, hub: Hub, config, *, deliver: bool = True,
                 progress: Callable[[int], None] = lambda n: None,
                 write_print_file: Callable[[bytes], None] | None = None,
                 total: Callable[[int], None] = lambda n: None, processes: int | None = None) -> RunResult:
    """Claim the notices due, then queue each email (with its PDF) or add it to the day's print file.

    Commits after the claim and after every letter, so that what was done is recorded even if a
    later letter fails; a rerun claims nothing new and sends only what is still pending, queued or
    failed. With ``deliver`` the run then sends its queued emails itself and reports those that did
    not go; without (a web request, which never talks to the mail server) the sender delivers them.
    ``total`` is told how many letters the run will handle, once they are claimed; ``progress``
    how many more are done, as they are. ``processes=1`` keeps the layout in this process:
    a web request in a threaded server must not fork.
    """
    result = RunResult()
    result.claimed = len(claim_notices(session, actor, due_notices(session, as_of), as_of))
    session.commit()
    todo = unsent_notices(session)
    result.uncertain = len(uncertain_notices(session))
    by_email = [n for n in todo if n.channel == NoticeChannel.EMAIL]
    by_post = [n for n in todo if n.channel == NoticeChannel.POST]
    total(len(todo))
    by_post = _hold_back_unaddressed(session, by_post, result)
    progress(len(result.held_back))
    off = days_off(session)

    with LetterPress(processes) as press:
        for chunk_notices, _ in notice_letter_chunks(session, by_email, hub, press):
            session.commit()  # the letters are kept before any is queued
            for notice in chunk_notices:
                _queue_one(session, notice, hub, config, off)
                progress(1)

        if by_post:
            wholes = []
            for chunk_notices, part in notice_letter_chunks(session, by_post, hub, press, merged=True):
                session.commit()
                wholes.append(part.merged)
                progress(len(chunk_notices))
            result.print_file = concatenate_pdfs(wholes)
            del wholes
            if write_print_file is not None:
                write_print_file(result.print_file)
            ids, sent_at = [inspect(n).identity[0] for n in by_post], utcnow()
            for start in range(0, len(ids), 500):  # one UPDATE per 500, not a refresh and an UPDATE each
                session.execute(update(Notice).where(Notice.id.in_(ids[start:start + 500]))
                                .values(status=NoticeStatus.SENT, sent_at=sent_at, error=""),
                                execution_options={"synchronize_session": False})
            session.commit()
            result.printed = len(by_post)

    queued = queued_notices(session)
    result.queued = len(queued)
    if deliver and queued and config.get("MAIL_SERVER"):
        send_queued(session, config, ids=[n.mail_id for n in queued], ignore_backoff=True)
        for notice in session.scalars(select(Notice).where(Notice.id.in_([n.id for n in queued]))
                                      .order_by(Notice.id).execution_options(populate_existing=True)):
            if notice.status == NoticeStatus.SENT:
                result.emailed += 1
            else:
                error = notice.error or session.scalar(select(OutboxMessage.error)
                                                       .where(OutboxMessage.id == notice.mail_id))
                result.failed.append(f"{notice.recipient_email}: {error or 'queued, not sent yet'}")
    return result


def _hold_back_unaddressed(session: Session, by_post: list[Notice], result: RunResult) -> list[Notice]:
    """Record letters by post with nowhere to send them as not sent (failed, with the reason), so that
    they are not printed unaddressed, and a later run, once staff have added the address, sends them.
    Returns the letters that can be posted."""
    load_for_letters(session, by_post)
    postable = []
    for notice in by_post:
        if subject_address(notice.loan, notice.set_loan, notice.invoice):
            postable.append(notice)
            continue
        notice.status, notice.error = NoticeStatus.FAILED, NO_ADDRESS
        result.held_back.append(notice.recipient_name)
    if result.held_back:
        session.commit()
        log.warning("%d letters by post held back: no postal address", len(result.held_back))
    return postable


def held_back_summary(count: int) -> str:
    """What a run says about the letters it held back."""
    return (f"{count} {'letter' if count == 1 else 'letters'} by post held back (not printed): "
            "no postal address on record; add the address and run again to send "
            f"{'it' if count == 1 else 'them'}.")


def _queue_one(session: Session, notice: Notice, hub: Hub, config, off: DaysOff) -> None:
    """Queue one notice's email with its letter (or queue its failed email again), in one commit."""
    failed_mail = session.get(OutboxMessage, notice.mail_id) if notice.mail_id is not None else None
    if failed_mail is not None and failed_mail.status == MailStatus.FAILED:
        resend(session, failed_mail)
    else:
        pdf = session.scalar(select(Notice.pdf).where(Notice.id == notice.id))
        notice.mail_id = queue_mail(
            session, config, to=notice.recipient_email, subject=notice_subject(notice, hub),
            body=notice_email_body(session, notice, hub, off),
            attachments=[Attachment(f"{notice.stage.letter}-{notice.id}.pdf", pdf)]).id
    notice.status, notice.error = NoticeStatus.SENDING, ""
    session.commit()


def preview_letter(session: Session, due: DueNotice, as_of: date, hub: Hub) -> bytes:
    """The letter a run on ``as_of`` would send for ``due``, as the PDF it will be (nothing is recorded)."""
    notice = Notice(loan_id=due.loan.id if due.loan else None, loan=due.loan,
                    set_loan_id=due.set_loan.id if due.set_loan else None, set_loan=due.set_loan,
                    invoice_id=due.invoice.id if due.invoice else None, invoice=due.invoice,
                    stage=due.stage, as_of=as_of, days_overdue=due.days_overdue, channel=due.channel,
                    recipient_name=due.recipient_name, recipient_email=due.recipient_email)
    return render_letters(LETTER_TEMPLATE, [letter_context(session, notice, hub)], hub=hub).letters[0]


def due_notice_about(session: Session, as_of: date, *, loan_id: int | None = None,
                     set_loan_id: int | None = None, invoice_id: int | None = None) -> DueNotice | None:
    """The notice due on ``as_of`` about one loan, set loan or invoice, if one is."""
    return next((d for d in due_notices(session, as_of)
                 if (d.loan is not None and d.loan.id == loan_id)
                 or (d.set_loan is not None and d.set_loan.id == set_loan_id)
                 or (d.invoice is not None and d.invoice.id == invoice_id)), None)


def notice_history(session: Session, *, limit: int = 200) -> list[Notice]:
    return list(session.scalars(
        select(Notice).options(joinedload(Notice.loan).joinedload(Loan.instrument),
                               joinedload(Notice.set_loan).joinedload(SetLoan.classroom_set),
                               joinedload(Notice.set_loan).joinedload(SetLoan.school),
                               joinedload(Notice.invoice))
        .order_by(Notice.id.desc()).limit(limit)))


def notices_of(session: Session, *, loan: Loan | None = None, set_loan: SetLoan | None = None) -> list[Notice]:
    condition = Notice.loan_id == loan.id if loan is not None else Notice.set_loan_id == set_loan.id
    return list(session.scalars(select(Notice).where(condition).order_by(Notice.id)))


def print_file_for(session: Session, as_of: date, hub: Hub) -> bytes | None:
    """The printable letters sent by post on a run date, laid out again as one file."""
    notices = list(session.scalars(
        select(Notice).where(Notice.as_of == as_of, Notice.channel == NoticeChannel.POST,
                             Notice.status == NoticeStatus.SENT).order_by(Notice.id)))
    if not notices:
        return None
    off = days_off(session)
    return render_letters(LETTER_TEMPLATE, [letter_context(session, n, hub, off) for n in notices],
                          merged=True, hub=hub).merged


