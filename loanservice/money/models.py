"""Payer accounts and the ledger. Money is Decimal and Numeric(10, 2) end to end.

The ledger is append-only: an entry, an invoice's lines and the allocation of a payment to an
invoice are never changed or removed (database triggers refuse it, as for the audit trail). A
correction is a new entry: a credit note against an invoice, a refund, a write-off. An account's
balance is the sum of its entries: positive is owed to the hub, negative is credit.
"""
import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..borrowers.models import Family, OtherBorrower
from ..dbtypes import enum_column, sql_values, values_check
from ..extensions import db
from ..loans.models import AcademicTerm, Loan, LoanCharge
from ..schools.models import School
from ..sets.models import ClassroomSet, SetLoan
from ..timeutil import utcnow


class EntryKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    PAYMENT = "payment"
    REFUND = "refund"  # money paid back to the account holder (of their credit)
    WRITE_OFF = "write_off"  # a debt the hub gives up on

    @property
    def label(self) -> str:
        return {"invoice": "Invoice", "credit_note": "Credit note", "payment": "Payment", "refund": "Refund",
                "write_off": "Debt written off"}[self.value]

    @property
    def debit(self) -> bool:
        """Whether the entry adds to what the account owes."""
        return self in (EntryKind.INVOICE, EntryKind.REFUND)


DEBITS = (EntryKind.INVOICE, EntryKind.REFUND)


class PaymentMethod(enum.StrEnum):
    CASH = "cash"
    CHEQUE = "cheque"
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"

    @property
    def label(self) -> str:
        return {"cash": "Cash", "cheque": "Cheque", "card": "Card", "bank_transfer": "Bank transfer"}[self.value]


class LineKind(enum.StrEnum):
    HIRE = "hire"  # one loan's charge for one term
    LOSS = "loss"  # the replacement cost of a lost or stolen instrument
    DEPOSIT = "deposit"  # a loan's refundable deposit, on its first invoice
    SET_HIRE = "set_hire"  # a school's hire of a classroom set for one term

    @property
    def label(self) -> str:
        return {"hire": "Hire", "loss": "Replacement of a lost instrument", "deposit": "Deposit",
                "set_hire": "Classroom set hire"}[self.value]


class DepositOutcome(enum.StrEnum):
    REFUNDED = "refunded"  # credited back to the account at return
    KEPT = "kept"  # kept against damage or loss

    @property
    def label(self) -> str:
        return {"refunded": "Refunded", "kept": "Kept"}[self.value]


class SetFeeBasis(enum.StrEnum):
    PER_SET = "set"
    PER_INSTRUMENT = "instrument"

    @property
    def label(self) -> str:
        return {"set": "per set", "instrument": "per instrument"}[self.value]


class PayerAccount(db.Model):
    """Who pays: a family (or a named payer for it), a school, or another borrower."""

    __tablename__ = "payer_account"
    __table_args__ = (
        CheckConstraint("(CASE WHEN family_id IS NULL THEN 0 ELSE 1 END)"
                        " + (CASE WHEN school_id IS NULL THEN 0 ELSE 1 END)"
                        " + (CASE WHEN other_borrower_id IS NULL THEN 0 ELSE 1 END) = 1", name="one_holder"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # What people quote when they pay: on every invoice and statement.
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    family_id: Mapped[int | None] = mapped_column(ForeignKey("family.id"), unique=True)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), unique=True)
    other_borrower_id: Mapped[int | None] = mapped_column(ForeignKey("other_borrower.id"), unique=True)
    # A payer who is not the hirer (a carer, a foster agency, the local authority): invoices go to them.
    payer_name: Mapped[str] = mapped_column(String(200), default="")
    payer_email: Mapped[str] = mapped_column(String(254), default="")
    payer_address: Mapped[str] = mapped_column(String(500), default="")
    # The account's choice to pay each term's invoice by monthly instalments (where the hub allows it).
    pays_by_instalments: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    family: Mapped[Family | None] = relationship()
    school: Mapped[School | None] = relationship()
    other_borrower: Mapped[OtherBorrower | None] = relationship()

    @property
    def holder(self) -> Family | School | OtherBorrower:
        return self.family or self.school or self.other_borrower

    @property
    def name(self) -> str:
        """Who the invoices are addressed to."""
        return self.payer_name or str(self.holder)

    @property
    def email(self) -> str:
        if self.payer_name:
            return self.payer_email
        holder = self.holder
        return holder.contact_email if isinstance(holder, School) else getattr(holder, "email", "")

    @property
    def address(self) -> str:
        return self.payer_address if self.payer_name else getattr(self.holder, "address", "")

    def __str__(self) -> str:
        return f"{self.name} ({self.reference})"


class LedgerEntry(db.Model):
    """One movement of money on an account: never changed once written."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        values_check("kind", EntryKind, "kind_known"),
        CheckConstraint(f"method IS NULL OR method IN ({sql_values(PaymentMethod)})", name="method_known"),
        # Debits add to what is owed, credits take from it: the sign follows the kind.
        CheckConstraint(f"(kind IN ({sql_values(DEBITS)})) = (amount > 0) AND amount <> 0", name="sign_follows_kind"),
        CheckConstraint("(kind IN ('invoice', 'credit_note')) = (number IS NOT NULL)", name="numbered_documents"),
        Index("ix_ledger_entry_account_posted", "account_id", "posted_on", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("payer_account.id"))
    kind: Mapped[EntryKind] = mapped_column(enum_column(EntryKind, 12))
    # Invoices and credit notes: sequential, with no gaps or duplicates (money.services.next_number).
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    posted_on: Mapped[date]
    due_on: Mapped[date | None]  # invoices
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    term_id: Mapped[int | None] = mapped_column(ForeignKey("academic_term.id"), index=True)
    method: Mapped[PaymentMethod | None] = mapped_column(enum_column(PaymentMethod, 16))
    reference: Mapped[str] = mapped_column(String(100), default="")  # the payer's reference, a cheque number
    # A credit note or write-off is against an invoice; a refund may be of a payment.
    against_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[PayerAccount] = relationship()
    term: Mapped[AcademicTerm | None] = relationship()
    against: Mapped["LedgerEntry | None"] = relationship(remote_side=[id])
    created_by: Mapped[User | None] = relationship()
    lines: Mapped[list["InvoiceLine"]] = relationship(back_populates="invoice", order_by="InvoiceLine.id")
    instalments: Mapped[list["Instalment"]] = relationship(back_populates="invoice", order_by="Instalment.number")

    @property
    def kind_label(self) -> str:
        return self.kind.label

    @property
    def size(self) -> Decimal:
        """The amount as people read it, without its sign."""
        return abs(self.amount)

    def __str__(self) -> str:
        return self.number or f"{self.kind_label} {self.id}"


class InvoiceLine(db.Model):
    """A line of an invoice: one loan's charge for one term (full fee, remission, due), or a loss."""

    __tablename__ = "invoice_line"
    __table_args__ = (
        values_check("kind", LineKind, "kind_known"),
        CheckConstraint("amount >= 0 AND full_fee >= amount", name="amount_range"),
        CheckConstraint("(kind = 'hire') = (charge_id IS NOT NULL)", name="hire_has_charge"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id"), index=True)
    kind: Mapped[LineKind] = mapped_column(enum_column(LineKind, 8))
    # A term's charge is invoiced once, whatever runs or races: the database refuses a second line.
    charge_id: Mapped[int | None] = mapped_column(ForeignKey("loan_charge.id"), unique=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loan.id"), index=True)
    description: Mapped[str] = mapped_column(String(300))
    full_fee: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    # The remission category applied (its name only: never the evidence).
    remission_category: Mapped[str] = mapped_column(String(32), default="none")
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))

    invoice: Mapped[LedgerEntry] = relationship(back_populates="lines")
    charge: Mapped[LoanCharge | None] = relationship()
    loan: Mapped[Loan | None] = relationship()

    @property
    def remission(self) -> Decimal:
        return self.full_fee - self.amount


class Allocation(db.Model):
    """A credit (payment, credit note, write-off) settling (part of) a debit (invoice, refund).

    Every account is kept settled as far as it can be: it never has an open debit and an
    unallocated credit at once, so its open debits are its debt and its unallocated credits its
    credit.
    """

    __tablename__ = "allocation"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id"), index=True)
    debit_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NumberSequence(db.Model):
    """The next number of a numbered document; taken under a row lock so numbers have no gaps."""

    __tablename__ = "number_sequence"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    next_value: Mapped[int] = mapped_column(default=1)


class BankImport(db.Model):
    """A bank statement imported as payments: the same file (by its SHA-256) is never imported twice."""

    __tablename__ = "bank_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_hash: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(200), default="")
    payments: Mapped[int]
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)

    imported_by: Mapped[User | None] = relationship()
    lines: Mapped[list["BankLine"]] = relationship(back_populates="bank_import", order_by="BankLine.line")


class BankLine(db.Model):
    """A statement line imported as a payment; its fingerprint (date, amount, reference) is imported once."""

    __tablename__ = "bank_line"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("bank_import.id"), index=True)
    line: Mapped[int]  # the line of the file
    # A line already imported (from an overlapping statement) is refused by the database, not just by code.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    paid_on: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    reference: Mapped[str] = mapped_column(String(200))
    payment_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id"), unique=True)

    bank_import: Mapped[BankImport] = relationship(back_populates="lines")
    payment: Mapped[LedgerEntry] = relationship()


class Instalment(db.Model):
    """One monthly instalment of an invoice: what falls due on which date. The instalments of an invoice
    sum to its amount (the last takes the pennies) and, like the invoice, never change."""

    __tablename__ = "invoice_instalment"
    __table_args__ = (
        UniqueConstraint("invoice_id", "number"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("number >= 1", name="number_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id"))
    number: Mapped[int]  # 1, 2, 3... in the order they fall due
    due_on: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))

    invoice: Mapped[LedgerEntry] = relationship(back_populates="instalments")


class LoanDeposit(db.Model):
    """A loan's refundable deposit: invoiced once (as its own line), held while the loan is open."""

    __tablename__ = "loan_deposit"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), unique=True)  # one deposit a loan, whatever races
    account_id: Mapped[int] = mapped_column(ForeignKey("payer_account.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("invoice_line.id"), unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    loan: Mapped[Loan] = relationship()
    account: Mapped[PayerAccount] = relationship()
    line: Mapped[InvoiceLine] = relationship()
    release: Mapped["DepositRelease | None"] = relationship(back_populates="deposit", uselist=False)

    @property
    def held(self) -> bool:
        return self.release is None


class DepositRelease(db.Model):
    """What became of a deposit: refunded (a credit note on the account) or kept, with the reason.

    A deposit is released once: the database refuses a second release of it (unique deposit_id)."""

    __tablename__ = "deposit_release"
    __table_args__ = (
        values_check("outcome", DepositOutcome, "outcome_known"),
        CheckConstraint("(outcome = 'refunded') = (credit_note_id IS NOT NULL)", name="refund_has_credit_note"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deposit_id: Mapped[int] = mapped_column(ForeignKey("loan_deposit.id"), unique=True)
    outcome: Mapped[DepositOutcome] = mapped_column(enum_column(DepositOutcome, 10))
    credit_note_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    released_on: Mapped[date]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    deposit: Mapped[LoanDeposit] = relationship(back_populates="release")
    credit_note: Mapped[LedgerEntry | None] = relationship()
    created_by: Mapped[User | None] = relationship()


class SetHireFee(db.Model):
    """What a school pays a term for a classroom set: a fee for the set, or a fee per instrument in it."""

    __tablename__ = "set_hire_fee"
    __table_args__ = (
        values_check("basis", SetFeeBasis, "basis_known"),
        CheckConstraint("fee >= 0", name="fee_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("classroom_set.id"), unique=True)
    basis: Mapped[SetFeeBasis] = mapped_column(enum_column(SetFeeBasis, 10))
    fee: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    classroom_set: Mapped[ClassroomSet] = relationship()


class SetHireCharge(db.Model):
    """A set loan's hire for one term, on one invoice line: the database refuses to invoice it twice."""

    __tablename__ = "set_hire_charge"
    __table_args__ = (UniqueConstraint("set_loan_id", "term_id"), CheckConstraint("amount > 0", name="amount_positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    set_loan_id: Mapped[int] = mapped_column(ForeignKey("set_loan.id"))
    term_id: Mapped[int] = mapped_column(ForeignKey("academic_term.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("invoice_line.id"), unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))

    set_loan: Mapped[SetLoan] = relationship()
