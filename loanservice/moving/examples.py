"""Example files for each import, consistent with one another, so a hub can try the move on the demo."""
import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..csvimport import ImportKind
from ..inventory.models import Instrument, InstrumentStatus
from ..sets.models import ClassroomSetItem

EXAMPLES: dict[str, list[dict[str, str]]] = {
    "schools": [
        {"name": "Meadow Lane Primary School", "urn": "654321", "address": "Meadow Lane; Exampleton EX2 3CC",
         "contact_name": "Mr R Singh", "contact_email": "music@meadowlane.sch.uk", "phone": "01234 500600"},
        {"name": "Riverside Academy", "urn": "654322", "address": "5 River Walk; Exampleton EX3 4DD",
         "contact_name": "Mrs K Okafor", "contact_email": "k.okafor@riverside.sch.uk", "phone": "01234 500700"},
    ],
    "families": [
        {"hirer": "Priya Moving", "email": "priya.moving@example.com", "phone": "07700 900201",
         "address": "12 Oak Avenue; Exampleton EX2 5EE"},
        {"hirer": "Tom Newcomer", "email": "tom.newcomer@example.com", "phone": "07700 900202",
         "address": "3 Birch Close; Exampleton EX3 6FF"},
    ],
    "pupils": [
        {"name": "Asha Moving", "family_email": "priya.moving@example.com", "school_urn": "654321",
         "year_group": "5", "remission_category": "free_school_meals", "remission_verified_on": "2026-09-10",
         "send": "no"},
        {"name": "Leo Newcomer", "family_email": "tom.newcomer@example.com", "school_urn": "654322",
         "year_group": "8", "remission_category": "none", "remission_verified_on": "", "send": "yes"},
    ],
    "others": [
        {"name": "Exampleton Youth Brass Band", "description": "Youth brass band", "email": "brass@example.org",
         "phone": "01234 500800"},
        {"name": "Jo Peripatetic", "description": "Peripatetic teacher", "email": "jo.peri@example.org",
         "phone": ""},
    ],
    "people": [
        {"email": "new.storekeeper@demo.hub", "name": "Nia Storekeeper", "role": "staff", "school_urn": ""},
        {"email": "music.lead@meadowlane.sch.uk", "name": "Raj Singh", "role": "school", "school_urn": "654321"},
    ],
}
# Who the example running loans go to, in turn (the tags are the first instruments free in the store).
LOAN_BORROWERS = [
    {"borrower_type": "pupil", "borrower": "priya.moving@example.com", "pupil": "Asha Moving",
     "fee_per_term": "30.00", "remission_category": "free_school_meals", "charge_per_term": "0.00"},
    {"borrower_type": "family", "borrower": "tom.newcomer@example.com", "pupil": "",
     "fee_per_term": "30.00", "remission_category": "none", "charge_per_term": "30.00"},
    {"borrower_type": "school", "borrower": "654321", "pupil": "", "fee_per_term": "0.00",
     "remission_category": "none", "charge_per_term": "0.00"},
    {"borrower_type": "other", "borrower": "Exampleton Youth Brass Band", "pupil": "", "fee_per_term": "10.00",
     "remission_category": "none", "charge_per_term": "10.00"},
]


def example_rows(session: Session, kind: ImportKind) -> list[dict[str, str]]:
    if kind.name != "loans":
        return EXAMPLES[kind.name]
    tags = session.scalars(
        select(Instrument.asset_tag).where(Instrument.status == InstrumentStatus.AVAILABLE,
                                           Instrument.id.not_in(select(ClassroomSetItem.instrument_id)))
        .order_by(Instrument.asset_tag).limit(len(LOAN_BORROWERS))).all()
    return [dict(borrower, asset_tag=tag, started_on="2026-09-07", due_on="2027-07-16", deposit="0.00",
                 condition="2", accessories="") for tag, borrower in zip(tags, LOAN_BORROWERS, strict=False)]


def example_csv(session: Session, kind: ImportKind) -> str:
    """An example file for ``kind`` that imports cleanly after the examples before it."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=kind.columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(example_rows(session, kind))
    return buffer.getvalue()
