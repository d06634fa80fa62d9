"""The domain's signals: how a lower package lets a higher one react without importing it.

A receiver is connected when its package is imported and runs inside the sender's transaction:
it gets the sender's session as an argument, may flush, and never commits. Raising a domain
error in a receiver refuses the change being made.
"""
from blinker import Namespace

_signals = Namespace()

# Sent before a term is removed, so that modules above loans can refuse (raise TermInUse) when
# something they keep relies on it: overdue notices counted days in it (documents.notices).
# Sender: the AcademicTerm; keyword: session.
term_removing = _signals.signal("term-removing")

# Sent when an instrument is free again after a loan (returned undamaged, or a pending loan
# cancelled), so that reservations can hold it for the next child waiting for its type and size.
# Sender: the Instrument; keywords: session, actor, batch (the return's Batch, or None).
instrument_freed = _signals.signal("instrument-freed")

# Sent when a parent asks to reserve an instrument, before anything changes, so that parents can
# refuse (raise NotAllowed) one whose email address is not confirmed yet.
# Sender: the parent's User; keyword: session.
reserving = _signals.signal("reserving")

# Sent before a loan of one instrument on its own, so that sets can refuse (raise NotLendable) to
# lend a member of a classroom set, which goes out with its set. Sender: the Instrument; keyword: session.
lending_alone = _signals.signal("lending-alone")

# Sent before an instrument held for a signed agreement is sent to repair, written off or marked missing, so that loans
# can refuse (raise InvalidTransition) while a loan waiting for its agreement holds it.
# Sender: the Instrument; keyword: session.
held_instrument_withdrawing = _signals.signal("held-instrument-withdrawing")

# Sent when a loan is made to wait for its signed agreement, so that documents prepares the
# agreement and asks the hirer to sign it. Sender: the Loan; keywords: session, actor, config.
loan_held_for_agreement = _signals.signal("loan-held-for-agreement")

# Sent when a loan to a pupil or family is made at once (no signed agreement needed first), so that
# documents makes its agreement and emails the hirer a link to read and sign it.
# Sender: the Loan; keywords: session, actor, config.
loan_lent_to_hirer = _signals.signal("loan-lent-to-hirer")

# Sent before a loan that waited for its agreement is issued: documents returns the loan's latest
# agreement (None if there is none), refusing (AgreementNotSigned) one not signed yet; the issue
# records the agreement. Sender: the Loan; keyword: session.
loan_issuing = _signals.signal("loan-issuing")

# Sent by the mail sender when a message from the outbox is accepted by the mail server, and when
# it fails for good, so that what the message was about (an overdue notice) can follow its mail.
# Sender: the OutboxMessage; keyword: session.
mail_sent = _signals.signal("mail-sent")
mail_failed = _signals.signal("mail-failed")

# Sent when a loan is closed as lost or stolen, so that money invoices the hirer for the
# replacement. Sender: the Loan; keywords: session, actor, amount (the replacement owed, or None).
loan_lost = _signals.signal("loan-lost")

# Sent before an instrument is lent to a borrower or reserved for a child, so that money can refuse
# (raise InDebt) an account in debt beyond the hub's limit. Sender: the borrower (a Pupil, Family,
# School or OtherBorrower); keywords: session, config, actor, override (staff lend despite the debt:
# money records the override, with what is owed, in the audit trail).
borrowing = _signals.signal("borrowing")

# Sent by bookings while validating a booking of a classroom set, so that servicing can refuse dates the set
# will not be ready by. Sender: the ClassroomSet; keywords: session, start (the booking's first day).
# Receivers return a refusal message for people, or None.
booking_checked = _signals.signal("booking-checked")
