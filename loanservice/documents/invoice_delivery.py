"""Sending a term's invoices: emailed with the PDF attached, or merged into one print file for accounts
without email, the way overdue notices go (the same letter press, outbox and print file).

Each invoice is claimed first (a pending ``InvoiceDelivery``; the unique invoice makes sure none is
sent twice, however sends overlap), then its PDF is laid out in chunks and its email queued in its
own commit; the letters by post are merged into one file and marked sent. Sending again only sends
invoices issued since, or retries those whose email failed. Commits as it goes, like
``notices.send_notices``: each invoice sent is a fact that must outlive a later failure.
"""
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ..audit.services import record
from ..loans.models import AcademicTerm
from ..mail import Attachment, MailStatus, OutboxMessage, queue_mail
from ..mail.sender import resend
from ..money.models import EntryKind, LedgerEntry
from ..signals import mail_failed, mail_sent
from ..timeutil import utcnow
from .invoices import invoice_context
from .models import InvoiceDelivery, NoticeChannel, NoticeStatus
from .notices import NO_ADDRESS
from .render import LetterPress, concatenate_pdfs, render_letters
from .services import DocumentError, Hub

LETTERS_TEMPLATE = "documents/invoices.html"


@dataclass
class Delivery:
    """What sending a term's invoices did."""

    claimed: int = 0
    emailed: int = 0  # emails queued with their PDF (the sender delivers them)
    printed: int = 0
    held_back: list[str] = field(default_factory=list)  # payers without email or postal address: not printed
    print_file: bytes | None = None


@dataclass
class TermDelivery:
    """Where a term's invoices stand: issued, emailed, to print, not sent yet, failed."""

    issued: int
    emailed: int
    printed: int
    waiting: int
    failed: int


def _term_invoices(term: AcademicTerm):
    return select(LedgerEntry).where(LedgerEntry.kind == EntryKind.INVOICE, LedgerEntry.term_id == term.id)


def term_delivery(session: Session, term: AcademicTerm) -> TermDelivery:
    """Counts for the term's invoices page."""
    issued = session.scalar(select(func.count()).select_from(_term_invoices(term).subquery()))
    counts = dict(((channel, status), n) for channel, status, n in session.execute(
        select(InvoiceDelivery.channel, InvoiceDelivery.status, func.count())
        .where(InvoiceDelivery.term_id == term.id).group_by(InvoiceDelivery.channel, InvoiceDelivery.status)))
    emailed = sum(n for (channel, status), n in counts.items()
                  if channel == NoticeChannel.EMAIL and status in (NoticeStatus.SENDING, NoticeStatus.SENT))
    printed = counts.get((NoticeChannel.POST, NoticeStatus.SENT), 0)
    failed = sum(n for (_, status), n in counts.items() if status == NoticeStatus.FAILED)
    return TermDelivery(issued=issued, emailed=emailed, printed=printed, failed=failed,
                        waiting=issued - emailed - printed)


def claim_invoices(session: Session, actor, term: AcademicTerm) -> list[InvoiceDelivery]:
    """Record each of the term's invoices not yet sent as pending: by email when its payer has one, else by post."""
    new = session.scalars(
        _term_invoices(term).where(~select(InvoiceDelivery.id).where(InvoiceDelivery.invoice_id == LedgerEntry.id)
                                   .exists())
        .options(joinedload(LedgerEntry.account)).order_by(LedgerEntry.number)).all()
    claimed = [InvoiceDelivery(invoice=invoice, term_id=term.id, recipient_email=invoice.account.email or "",
                               channel=NoticeChannel.EMAIL if invoice.account.email else NoticeChannel.POST,
                               status=NoticeStatus.PENDING) for invoice in new]
    session.add_all(claimed)
    try:
        session.flush()
    except IntegrityError as error:
        raise DocumentError(f"The invoices for {term.name} are being sent now; try again when that has "
                            "finished.") from error
    if claimed:
        record(session, actor, "invoices.claimed", term, f"{len(claimed)} invoices for {term.name} to send",
               {"count": len(claimed)})
    return claimed


def unsent(session: Session, term: AcademicTerm) -> list[InvoiceDelivery]:
    """The term's invoices claimed but not sent (pending, or their email failed), in number order."""
    return list(session.scalars(
        select(InvoiceDelivery).join(InvoiceDelivery.invoice)
        .where(InvoiceDelivery.term_id == term.id,
               InvoiceDelivery.status.in_([NoticeStatus.PENDING, NoticeStatus.FAILED]))
        .order_by(LedgerEntry.number)))


def _load(session: Session, deliveries: Sequence[InvoiceDelivery]) -> None:
    """Load what the invoices of ``deliveries`` print (account, lines, term) in few queries."""
    ids = [d.invoice_id for d in deliveries]
    if ids:
        session.scalars(select(LedgerEntry).where(LedgerEntry.id.in_(ids)).options(
            joinedload(LedgerEntry.account), joinedload(LedgerEntry.lines), joinedload(LedgerEntry.term),
        )).unique().all()


def _chunks(session: Session, deliveries: Sequence[InvoiceDelivery], hub: Hub, config, press: LetterPress, *,
            merged: bool = False):
    for part in press.chunks(LETTERS_TEMPLATE, deliveries, merged=merged, hub=hub,
                             letter=lambda d: invoice_context(d.invoice, hub, config),
                             prepare=lambda part: _load(session, part)):
        yield list(deliveries[part.start:part.start + len(part.letters)]), part


def invoice_email_body(invoice: LedgerEntry, hub: Hub, config) -> str:
    """The email that carries an invoice: what it is for, how much, by when and how to pay, with the PDF attached."""
    letter = invoice_context(invoice, hub, config)
    lines = "\n".join(f"  {line['description']}: £{line['amount']:,.2f}" for line in letter["lines"])
    bank = "\n".join(f"  {line}" for line in letter["how_to_pay"].bank_lines)
    pay = f"Please pay by bank transfer to:\n{bank}\n" if bank else f"To pay, contact us: {hub.contact}\n"
    term = f" for {letter['term']}" if letter["term"] else ""
    return (f"Dear {letter['name']},\n\n"
            f"Here is invoice {letter['number']}{term}: £{letter['total']:,.2f}, due by "
            f"{letter['due_on']:%-d %b %Y}.\n\n{lines}\n\n{pay}"
            f"Quote your account reference {letter['reference']} so that we know the payment is yours.\n\n"
            f"The invoice is attached (PDF). Questions: {hub.contact}\n\n{hub.name}\n")


def _queue_one(session: Session, delivery: InvoiceDelivery, pdf: bytes, hub: Hub, config) -> None:
    """Queue one invoice's email with its PDF (or its failed email again), in one commit."""
    failed_mail = session.get(OutboxMessage, delivery.mail_id) if delivery.mail_id is not None else None
    if failed_mail is not None and failed_mail.status == MailStatus.FAILED:
        resend(session, failed_mail)
    else:
        invoice = delivery.invoice
        delivery.mail_id = queue_mail(
            session, config, to=delivery.recipient_email,
            subject=f"Invoice {invoice.number} from {hub.name}: £{invoice.amount:,.2f}",
            body=invoice_email_body(invoice, hub, config),
            attachments=[Attachment(f"invoice-{invoice.number}.pdf", pdf)]).id
    delivery.status, delivery.error = NoticeStatus.SENDING, ""
    session.commit()


def send_invoices(session: Session, actor, term: AcademicTerm, hub: Hub, config, *,
                  progress: Callable[[int], None] = lambda n: None, processes: int | None = None) -> Delivery:
    """Claim the term's invoices not sent yet, queue each email with its PDF, and merge the rest into one
    print file. ``processes=1`` keeps the layout in this process (a web request must not fork)."""
    result = Delivery()
    result.claimed = len(claim_invoices(session, actor, term))
    session.commit()
    todo = unsent(session, term)
    if not todo:
        raise DocumentError(f"Every invoice for {term.name} has been sent already: there is nothing new to send.")
    by_email = [d for d in todo if d.channel == NoticeChannel.EMAIL]
    by_post = _hold_back_unaddressed(session, [d for d in todo if d.channel == NoticeChannel.POST], result)
    with LetterPress(processes) as press:
        for deliveries, part in _chunks(session, by_email, hub, config, press):
            for delivery, pdf in zip(deliveries, part.letters, strict=True):
                _queue_one(session, delivery, pdf, hub, config)
                result.emailed += 1
                progress(1)
        if by_post:
            wholes = []
            for deliveries, part in _chunks(session, by_post, hub, config, press, merged=True):
                wholes.append(part.merged)
                progress(len(deliveries))
            result.print_file = concatenate_pdfs(wholes)
            ids, sent_at = [d.id for d in by_post], utcnow()
            for start in range(0, len(ids), 500):
                session.execute(update(InvoiceDelivery).where(InvoiceDelivery.id.in_(ids[start:start + 500]))
                                .values(status=NoticeStatus.SENT, sent_at=sent_at, error=""),
                                execution_options={"synchronize_session": False})
            result.printed = len(by_post)
    record(session, actor, "invoices.sent", term,
           f"Invoices for {term.name}: {result.emailed} emailed, {result.printed} to print",
           {"emailed": result.emailed, "printed": result.printed})
    session.commit()
    return result


def _hold_back_unaddressed(session: Session, by_post: list[InvoiceDelivery], result: Delivery) -> list[InvoiceDelivery]:
    """Keep back (failed, with the reason) the invoices by post whose payer has no postal address, as the
    notices do: sending again once the address is added sends them. Returns those that can be posted."""
    _load(session, by_post)
    postable = []
    for delivery in by_post:
        if delivery.invoice.account.address.strip():
            postable.append(delivery)
            continue
        delivery.status, delivery.error = NoticeStatus.FAILED, NO_ADDRESS
        result.held_back.append(delivery.invoice.account.name)
    if result.held_back:
        session.commit()
    return postable


def print_file_for(session: Session, term: AcademicTerm, hub: Hub, config) -> bytes | None:
    """The term's invoices sent by post, laid out again as one file to print."""
    deliveries = list(session.scalars(
        select(InvoiceDelivery).join(InvoiceDelivery.invoice)
        .where(InvoiceDelivery.term_id == term.id, InvoiceDelivery.channel == NoticeChannel.POST,
               InvoiceDelivery.status == NoticeStatus.SENT).order_by(LedgerEntry.number)))
    if not deliveries:
        return None
    _load(session, deliveries)
    return render_letters(LETTERS_TEMPLATE, [invoice_context(d.invoice, hub, config) for d in deliveries],
                          merged=True, hub=hub).merged


def print_file_name(term: AcademicTerm) -> str:
    return f"invoices-to-print-{term.name.lower().replace(' ', '-')}.pdf"


@mail_sent.connect
def _invoice_mail_sent(message: OutboxMessage, session: Session) -> None:
    session.execute(update(InvoiceDelivery).where(InvoiceDelivery.mail_id == message.id)
                    .values(status=NoticeStatus.SENT, sent_at=message.sent_at, error=""),
                    execution_options={"synchronize_session": False})


@mail_failed.connect
def _invoice_mail_failed(message: OutboxMessage, session: Session) -> None:
    session.execute(update(InvoiceDelivery).where(InvoiceDelivery.mail_id == message.id)
                    .values(status=NoticeStatus.FAILED, error=message.error),
                    execution_options={"synchronize_session": False})

