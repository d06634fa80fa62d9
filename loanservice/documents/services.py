"""Agreements, receipts and delivery notes: what goes in them, how they are signed and kept.

Session first, flush, never commit; the view owns the transaction.
"""
import hmac
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager

from ..audit.services import record
from ..borrowers.models import Family, RemissionCategory
from ..errors import InvalidInput, LoanServiceError, NotAllowed
from ..inventory.models import CONDITION_GRADES, Instrument
from ..loans.lending import AgreementNotSigned
from ..loans.models import Loan, LoanStatus
from ..mail import send_when_committed
from ..sets.models import SetLoan
from ..signals import loan_held_for_agreement, loan_issuing, loan_lent_to_hirer
from ..timeutil import today, utcnow
from .models import Agreement, HireConditions, SignatureMethod
from .render import render_pdf, sha256_hex

MAX_HIRE_CONDITIONS_LENGTH = 50_000


class DocumentError(LoanServiceError):
    status_code = 409


class AlreadySigned(DocumentError):
    pass


@dataclass(frozen=True)
class Hub:
    """The hub's own details, as printed at the head of every document."""

    name: str
    address: str
    contact: str
    return_instructions: str = ""

    @classmethod
    def from_config(cls, config) -> "Hub":
        missing = [key for key in ("HUB_NAME", "HUB_ADDRESS", "HUB_CONTACT") if not (config.get(key) or "").strip()]
        if missing:
            raise DocumentError(f"Set the hub's {', '.join(missing)} setting before printing documents.")
        return cls(name=config["HUB_NAME"].strip(), address=config["HUB_ADDRESS"].strip(),
                   contact=config["HUB_CONTACT"].strip(),
                   return_instructions=(config.get("HUB_RETURN_INSTRUCTIONS") or "").strip())


# ---------------------------------------------------------------- who a loan concerns


def hirer_family(loan: Loan) -> Family | None:
    """The family responsible for a loan: the pupil's parent or carer, or the family itself."""
    if loan.pupil is not None:
        return loan.pupil.family
    return loan.family


def hirer_of(loan: Loan) -> tuple[str, str]:
    """The hirer's name and email (empty when there is none on record)."""
    family = hirer_family(loan)
    if family is not None:
        return family.name, family.email or ""
    if loan.school is not None:
        return loan.school.contact_name or loan.school.name, loan.school.contact_email or ""
    if loan.other_borrower is not None:
        return loan.other_borrower.name, loan.other_borrower.email or ""
    return str(loan.borrower), ""


def postal_address(loan: Loan) -> str:
    """Where a letter about ``loan`` goes by post: the family's address, or the school's."""
    family = hirer_family(loan)
    if family is not None:
        return family.address or ""
    if loan.school is not None:
        return loan.school.address or ""
    return ""


# ---------------------------------------------------------------- terms and conditions


def current_hire_conditions(session: Session) -> HireConditions | None:
    return session.scalar(select(HireConditions).order_by(HireConditions.version.desc()).limit(1))


def hire_conditions_version(session: Session, version: int) -> HireConditions | None:
    """One version of the terms and conditions, current or not: agreements made under it cite it."""
    return session.scalar(select(HireConditions).where(HireConditions.version == version))


def hire_conditions_history(session: Session) -> list[HireConditions]:
    return list(session.scalars(select(HireConditions).order_by(HireConditions.version.desc())))


def save_hire_conditions(session: Session, actor, text: str) -> HireConditions:
    """Publish a new version of the terms and conditions; agreements already made keep theirs."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise InvalidInput("Write the terms and conditions.", field="text")
    if len(text) > MAX_HIRE_CONDITIONS_LENGTH:
        raise InvalidInput(f"The terms are limited to {MAX_HIRE_CONDITIONS_LENGTH:,} characters.", field="text")
    current = current_hire_conditions(session)
    if current is not None and current.text == text:
        raise InvalidInput(f"That is the same as version {current.version}; nothing changed.", field="text")
    version = (session.scalar(select(func.max(HireConditions.version))) or 0) + 1
    conditions = HireConditions(version=version, text=text, created_by=actor)
    session.add(conditions)
    session.flush()
    record(session, actor, "terms.published", conditions, f"Terms and conditions version {version}",
           {"length": len(text)})
    return conditions


# ---------------------------------------------------------------- agreements


def agreement_context(loan: Loan, conditions: HireConditions, hub: Hub) -> dict:
    """Plain data for the agreement template."""
    instrument = loan.instrument
    hirer_name, hirer_email = hirer_of(loan)
    pupil = loan.pupil
    school = pupil.school if pupil is not None else loan.school
    return {
        "hub": hub,
        "loan_id": loan.id,
        "hirer_name": hirer_name,
        "hirer_email": hirer_email,
        "hirer_address": postal_address(loan).splitlines(),
        "pupil_name": pupil.name if pupil is not None else "",
        "pupil_year": pupil.year_label if pupil is not None else "",
        "school_name": school.name if school is not None else "",
        "instrument": {
            "type": instrument.type.name, "size": instrument.size, "make": instrument.make,
            "model": instrument.model, "serial": instrument.serial_number, "tag": instrument.asset_tag,
            # What the hirer pays if it is lost or stolen: letters later demand it, so it is agreed here.
            "replacement_value": instrument.replacement_value,
        },
        "accessories": [a.strip() for a in loan.accessories.split(",") if a.strip()],
        "condition": f"{loan.condition_at_issue} {CONDITION_GRADES[loan.condition_at_issue]}",
        # A loan waiting for this agreement starts on the day it is issued, which nobody knows yet.
        "started_on": None if loan.is_pending else loan.started_on,
        "due_on": loan.due_on,
        "fee_per_term": loan.fee_per_term,
        "charge_per_term": loan.charge_per_term,
        "remission": RemissionCategory(loan.remission_category).label if loan.has_remission else "",
        "deposit": loan.deposit,
        "hire_conditions_version": conditions.version,
        "hire_conditions_paragraphs": conditions.paragraphs,
        "made_on": today(),
    }


def signatures_context(agreement: Agreement) -> dict:
    """What fills an agreement's signature boxes: who signed, how and when, and who countersigned."""
    hirer = None
    if agreement.is_signed:
        hirer = {"name": agreement.signed_name, "method": agreement.signature_method.label,
                 "recorded_by": str(agreement.recorded_by) if agreement.recorded_by else "",
                 "at": agreement.signed_at}
    hub = None
    if agreement.countersigned_at is not None:
        hub = {"name": str(agreement.countersigned_by) if agreement.countersigned_by else "",
               "at": agreement.countersigned_at}
    return {"hirer_signature": hirer, "hub_signature": hub, "fingerprint": agreement.sha256,
            "made_on": agreement.created_at.date()}


def render_signed_copy(agreement: Agreement, hub: Hub) -> bytes:
    """The agreement as signed: the same document, its signature boxes filled in, and the fingerprint of
    the copy that was read in its details."""
    context = agreement_context(agreement.loan, agreement.hire_conditions, hub)
    context.update(signatures_context(agreement))
    return render_pdf("documents/agreement.html", archive=True, **context)


def agreement_copy(session: Session, agreement: Agreement) -> bytes:
    """The PDF to hand out: the signed copy once there is one, else the copy to read and sign."""
    column = Agreement.signed_pdf if agreement.is_signed else Agreement.pdf
    return session.scalar(select(column).where(Agreement.id == agreement.id)) or session.scalar(
        select(Agreement.pdf).where(Agreement.id == agreement.id))


def latest_agreement(session: Session, loan: Loan) -> Agreement | None:
    return session.scalar(select(Agreement).where(Agreement.loan_id == loan.id)
                          .order_by(Agreement.id.desc()).limit(1))



@loan_issuing.connect
def _signed_agreement_of(loan: Loan, *, session: Session) -> Agreement | None:
    """A loan waiting for its agreement is issued only once its latest agreement is signed (None: no agreement)."""
    agreement = latest_agreement(session, loan)
    if agreement is not None and not agreement.is_signed:
        raise AgreementNotSigned(f"{loan.instrument.asset_tag} cannot be issued until the agreement is signed: the "
                                 "hirer signs it online, or signs a printed copy at the desk and you record it.")
    return agreement

def latest_agreements(session: Session, loans: list[Loan]) -> dict[int, Agreement]:
    """The latest agreement of each loan, by loan id, in one query."""
    latest: dict[int, Agreement] = {}
    if loans:
        for agreement in session.scalars(select(Agreement).where(Agreement.loan_id.in_([loan.id for loan in loans]))
                                         .order_by(Agreement.id)):
            latest[agreement.loan_id] = agreement  # the latest wins
    return latest


def signed_agreement(session: Session, loan: Loan) -> Agreement | None:
    return session.scalar(select(Agreement).where(Agreement.loan_id == loan.id, Agreement.signed_at.is_not(None))
                          .order_by(Agreement.id.desc()).limit(1))


def prepare_agreement(session: Session, actor, loan: Loan, hub: Hub, *, fresh: bool = False) -> Agreement:
    """The agreement to sign for a loan: the latest unsigned one under the current terms, or a new one.

    The PDF is made once and kept, so that what a parent reads is byte for byte what they sign
    (its SHA-256 is checked when they do). ``fresh`` makes a new copy after the loan changed.
    """
    conditions = current_hire_conditions(session)
    if conditions is None:
        raise DocumentError("The hub has no terms and conditions yet: a hub manager writes them first.")
    latest = latest_agreement(session, loan)
    if latest is not None and not latest.is_signed and latest.hire_conditions_id == conditions.id and not fresh:
        return latest
    if loan.is_closed and latest is not None:
        raise DocumentError("The loan has ended; its agreement is kept as it was.")
    pdf = render_pdf("documents/agreement.html", archive=True, **agreement_context(loan, conditions, hub))
    agreement = Agreement(loan=loan, hire_conditions=conditions, pdf=pdf, sha256=sha256_hex(pdf), created_by=actor)
    session.add(agreement)
    session.flush()
    record(session, actor, "agreement.prepared", agreement,
           f"Agreement for loan {loan.id} (terms v{conditions.version})", {"sha256": agreement.sha256},
           instrument=loan.instrument)
    return agreement


@loan_lent_to_hirer.connect
def _offer_agreement_at_lending(loan: Loan, *, session: Session, actor, config) -> None:
    """A loan made to a pupil or family: its agreement is made and the hirer emailed a link to sign it."""
    offer_agreement(session, actor, loan, config)


def offer_agreement(session: Session, actor, loan: Loan, config) -> Agreement | None:
    """Make the agreement of a loan just lent and email the hirer a link to read and sign it.

    Nothing when the hub has written no terms and conditions yet: lending does not wait for them
    (the loan's page offers to make the agreement later).
    """
    if current_hire_conditions(session) is None:
        return None
    agreement = prepare_agreement(session, actor, loan, Hub.from_config(config))
    ask_hirer_to_sign(session, loan, config)
    return agreement


def ask_hirer_to_sign(session: Session, loan: Loan, config) -> None:
    """Email the hirer (a family with an email address) a link to read and sign the loan agreement:
    before the handover for a loan held for its agreement, after it otherwise.

    Sent only once the transaction commits. A family without an email signs at the desk.
    """
    family = hirer_family(loan)
    to = family.user.email if family is not None and family.user is not None else (family.email if family else "")
    if not to:
        return
    instrument = loan.instrument
    held_for = loan.pupil.name if loan.pupil is not None else "you"
    whose = f"{loan.pupil.name}'s" if loan.pupil is not None else "your"
    hub = config.get("HUB_NAME", "The music hub")
    link = f"{config.get('PUBLIC_BASE_URL', '')}/loans/{loan.id}/agreement"
    if loan.is_pending:
        text = (f"{instrument.asset_tag}, a {instrument.description}, is held for {held_for}. Before it is handed "
                f"over, please read the loan agreement and sign it online (sign in first):\n\n{link}\n\n"
                "Or sign a printed copy at the store when you collect it.")
    else:
        text = (f"{instrument.asset_tag}, a {instrument.description}, is now on loan to {held_for} until "
                f"{loan.due_on:%-d %B %Y}. Please read the loan agreement and sign it online (sign in first):"
                f"\n\n{link}\n\nIt says what the loan costs and what to do if the instrument is damaged or lost. "
                "If you have no account with us, sign a printed copy at the store instead.")
    body = f"Hello {family.name},\n\n{text}\n\n{hub}\n{config.get('HUB_CONTACT', '')}\n"
    send_when_committed(session, config, to=to,
                        subject=f"{hub}: sign the loan agreement for {whose} {instrument.description}", body=body)


def _check_signable(session: Session, agreement: Agreement) -> None:
    if agreement.is_signed:
        raise AlreadySigned(f"This agreement was already signed by {agreement.signed_name} "
                            f"on {agreement.signed_at:%-d %b %Y}.")
    newer = session.scalar(select(Agreement.id).where(Agreement.loan_id == agreement.loan_id,
                                                      Agreement.id > agreement.id).limit(1))
    if newer is not None:
        raise DocumentError("There is a newer copy of this agreement: read that one and sign it.")
    if agreement.loan.status is LoanStatus.CANCELLED:
        raise DocumentError("This loan was cancelled before the instrument was issued; there is nothing to sign.")
    if agreement.loan.is_closed:
        raise DocumentError("The loan has ended; there is nothing left to sign.")


def sign_online(session: Session, user, agreement: Agreement, *, full_name: str, agreed: bool,
                sha256: str, hub: Hub | None = None) -> Agreement:
    """A parent signs: their typed name, an explicit tick, the time, and the hash of what they read."""
    family = hirer_family(agreement.loan)
    if family is None or family.user_id is None or family.user_id != user.id:
        raise NotAllowed("Only the hirer can sign this agreement.")
    _check_signable(session, agreement)
    full_name = " ".join(full_name.split())
    if len(full_name) < 2:
        raise InvalidInput("Type your full name to sign.", field="full_name")
    if not agreed:
        raise InvalidInput("Tick the box to say you agree to the terms.", field="agreed")
    if not hmac.compare_digest((sha256 or "").strip().lower(), agreement.sha256):
        raise DocumentError("The agreement changed since you opened it. Read it again, then sign.")
    agreement.signed_at = utcnow()
    agreement.signed_name = full_name[:200]
    agreement.signature_method = SignatureMethod.ONLINE
    agreement.signed_by = user
    if hub is not None:
        agreement.signed_pdf = render_signed_copy(agreement, hub)
    session.flush()
    record(session, user, "agreement.signed", agreement, "Signed online by the hirer",
           {"sha256": agreement.sha256, "method": "online"}, instrument=agreement.loan.instrument)
    return agreement


def record_desk_signature(session: Session, actor, agreement: Agreement, *, signer_name: str,
                          hub: Hub | None = None) -> Agreement:
    """Staff record that the printed agreement was signed at the desk."""
    _check_signable(session, agreement)
    signer_name = " ".join(signer_name.split())
    if len(signer_name) < 2:
        raise InvalidInput("Whose signature is it? Give their full name.", field="signer_name")
    agreement.signed_at = utcnow()
    agreement.signed_name = signer_name[:200]
    agreement.signature_method = SignatureMethod.DESK
    agreement.recorded_by = actor
    if hub is not None:
        agreement.signed_pdf = render_signed_copy(agreement, hub)
    session.flush()
    record(session, actor, "agreement.signed", agreement, "Signed at the desk",
           {"sha256": agreement.sha256, "method": "desk"}, instrument=agreement.loan.instrument)
    return agreement


def countersign(session: Session, actor, agreement: Agreement, hub: Hub | None = None) -> Agreement:
    """A member of staff countersigns a signed agreement: the copy read and its hash are untouched; the
    signed copy gets the countersignature in the hub's box."""
    if not agreement.is_signed:
        raise DocumentError("The hirer signs first; then staff countersign.")
    if agreement.countersigned_at is not None:
        raise AlreadySigned(f"Already countersigned by {agreement.countersigned_by}.")
    agreement.countersigned_at = utcnow()
    agreement.countersigned_by = actor
    if hub is not None:
        agreement.signed_pdf = render_signed_copy(agreement, hub)
    session.flush()
    record(session, actor, "agreement.countersigned", agreement, "Countersigned", {},
           instrument=agreement.loan.instrument)
    return agreement


# ---------------------------------------------------------------- receipts and delivery notes


def _item(loan: Loan) -> dict:
    instrument = loan.instrument
    return {
        "tag": instrument.asset_tag, "type": instrument.type.name, "size": instrument.size,
        "make": instrument.make, "serial": instrument.serial_number,
        "issued": f"{loan.condition_at_issue} {CONDITION_GRADES[loan.condition_at_issue]}",
        "returned": (f"{loan.condition_at_return} {CONDITION_GRADES[loan.condition_at_return]}"
                     if loan.condition_at_return else ""),
        "returned_on": loan.closed_on if loan.status in (LoanStatus.RETURNED, LoanStatus.EXCHANGED) else None,
        "damaged": loan.damaged, "note": loan.return_note, "lost": loan.status == LoanStatus.LOST,
        "replacement_owed": loan.replacement_owed, "accessories": loan.accessories,
    }


def loan_receipt_pdf(loan: Loan, hub: Hub) -> bytes:
    """The return receipt for an individual loan that has ended."""
    if loan.is_pending or loan.status is LoanStatus.CANCELLED:
        raise DocumentError(f"{loan.instrument.asset_tag} was never issued on this loan: there is no receipt.")
    if loan.is_open:
        raise DocumentError(f"{loan.instrument.asset_tag} has not come back yet: there is no receipt.")
    hirer_name, _ = hirer_of(loan)
    return render_pdf("documents/loan_receipt.html", archive=True, hub=hub, loan_id=loan.id,
                      hirer_name=hirer_name, pupil_name=loan.pupil.name if loan.pupil else "",
                      item=_item(loan), started_on=loan.started_on, closed_on=loan.closed_on,
                      status=loan.status.label, closed_by=str(loan.closed_by) if loan.closed_by else "",
                      lost=loan.status is LoanStatus.LOST, made_on=today())


def set_items(session: Session, set_loan: SetLoan) -> list[Loan]:
    return list(session.scalars(
        select(Loan).join(Loan.instrument).where(Loan.set_loan_id == set_loan.id)
        .options(contains_eager(Loan.instrument)).order_by(Instrument.asset_tag)))


def _set_context(set_loan: SetLoan, hub: Hub) -> dict:
    school = set_loan.school
    return {"hub": hub, "set_loan_id": set_loan.id, "set_name": set_loan.classroom_set.name,
            "set_tag": set_loan.classroom_set.tag, "school_name": school.name, "school_address": school.address,
            "school_contact": school.contact_name, "started_on": set_loan.started_on, "due_on": set_loan.due_on,
            "closed_on": set_loan.closed_on, "made_on": today()}


def set_delivery_note_pdf(session: Session, set_loan: SetLoan, hub: Hub) -> bytes:
    """Every item of a set going to a school, with its size, tag and condition, and a sign-off block."""
    items = [_item(loan) for loan in set_items(session, set_loan)]
    return render_pdf("documents/set_delivery_note.html", archive=True, items=items,
                      **_set_context(set_loan, hub))


def set_receipt_pdf(session: Session, set_loan: SetLoan, hub: Hub) -> bytes:
    """What came back of a set, in what condition, and what is still missing."""
    loans = set_items(session, set_loan)
    returned = [_item(loan) for loan in loans if loan.status in (LoanStatus.RETURNED, LoanStatus.EXCHANGED)]
    lost = [_item(loan) for loan in loans if loan.status == LoanStatus.LOST]
    still_out = [_item(loan) for loan in loans if loan.is_open]
    return render_pdf("documents/set_receipt.html", archive=True, returned=returned, lost=lost,
                      still_out=still_out, total=len(loans), overdue=set_loan.due_on < today(),
                      **_set_context(set_loan, hub))


@loan_held_for_agreement.connect
def _prepare_and_ask_to_sign(loan: Loan, *, session: Session, actor, config) -> None:
    """A loan held for its agreement: the agreement is made, ready to sign, and the hirer emailed."""
    prepare_agreement(session, actor, loan, Hub.from_config(config))
    ask_hirer_to_sign(session, loan, config)
