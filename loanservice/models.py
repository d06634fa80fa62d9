"""Import every feature's models so that the metadata (and Alembic) sees them all."""
from .accounts.models import Invitation, RememberToken, Role, User, UserSession  # noqa: F401
from .audit.models import AuditEvent  # noqa: F401
from .bookings.models import Booking, CalendarFeed  # noqa: F401
from .borrowers.models import Family, OtherBorrower, Pupil, RemissionClaim  # noqa: F401
from .documents.models import Agreement, HireConditions, Notice, NoticeStage  # noqa: F401
from .inventory.models import (  # noqa: F401
    AssetTagCounter,
    ConditionCheck,
    Instrument,
    InstrumentCount,
    InstrumentStatus,
    InstrumentType,
    Repair,
)
from .loans.models import AcademicTerm, FeeBand, Loan, LoanCharge, RemissionRule  # noqa: F401
from .mail import OutboxMessage  # noqa: F401
from .money.models import (  # noqa: F401
    Allocation,
    BankImport,
    BankLine,
    InvoiceLine,
    LedgerEntry,
    NumberSequence,
    PayerAccount,
)
from .moving.models import ImportedFile  # noqa: F401
from .parents.models import AccountToken, ParentAccount, ParentRequest  # noqa: F401
from .privacy.models import (  # noqa: F401
    AccessRequest,
    FamilyAnonymisation,
    PrivacyHold,
    PrivacyNotice,
    PrivacyNoticeAcceptance,
    RemovedDocument,
    RetentionPolicy,
)
from .reservations.models import Reservation, WaitingListTurn  # noqa: F401
from .schools.models import School  # noqa: F401
from .servicing.models import ServicePlan  # noqa: F401
from .sets.models import ClassroomSet, ClassroomSetItem, SetLoan, TakeHome  # noqa: F401
from .stocktake.models import Stocktake, StocktakeItem  # noqa: F401
