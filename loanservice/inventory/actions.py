"""What can be done with an instrument now: the buttons its page and the scan station show.

Decided here, once, from the rules the services enforce (the status table ``TRANSITIONS``, no change
that would strand a loan, one open repair); the templates only loop over the list. The loan holding
the instrument, its open repair and whether it belongs to a classroom set come from the caller,
the modules that know them being above this one.
"""
from dataclasses import dataclass, field

from .models import Instrument, InstrumentStatus, Repair
from .services import TRANSITIONS

S = InstrumentStatus


@dataclass(frozen=True)
class Action:
    """One thing to do, as a link: ``kind`` is "main" (the button), "other" (a secondary one) or "danger"."""

    name: str
    label: str
    endpoint: str
    params: dict = field(default_factory=dict)
    kind: str = "other"


def _may_become(instrument: Instrument, status: InstrumentStatus, current_loan) -> bool:
    """The status table allows it, and no loan would be stranded (as ``_refuse_while_on_loan`` says)."""
    return (status in TRANSITIONS[instrument.status] and instrument.status is not S.ON_LOAN
            and current_loan is None)


def _loan_action(instrument: Instrument, current_loan, in_set: bool) -> Action | None:
    """Issue (or cancel) a loan waiting for its agreement, check in an open one, or check out."""
    if current_loan is not None and current_loan.is_pending:
        return Action("issue", "Issue or cancel the loan", "loans.detail", {"loan_id": current_loan.id}, "main")
    if current_loan is not None:
        return Action("check_in", "Check in", "loans.check_in", {"loan_id": current_loan.id}, "main")
    if instrument.status is S.AVAILABLE and not in_set:  # a set's instruments go out with the set
        return Action("check_out", "Lend", "loans.check_out", {"tag": instrument.asset_tag}, "main")
    return None


def available_actions(instrument: Instrument, *, current_loan=None, open_repair: Repair | None = None,
                      in_set: bool = False) -> list[Action]:
    """The instrument page's actions, in the order shown; none for an instrument written off.

    ``current_loan``: the loan holding it (open, or pending its agreement); ``in_set``: it belongs
    to a classroom set."""
    if instrument.status is S.WRITTEN_OFF:
        return []
    tag = {"tag": instrument.asset_tag}
    # Without a loan to act on, recording its condition is the main thing to do (not for one on the shelf).
    quiet = current_loan is not None or instrument.status is S.AVAILABLE
    actions = [_loan_action(instrument, current_loan, in_set),
               Action("condition", "Record condition", "inventory.instrument_condition", tag,
                      "other" if quiet else "main")]
    if open_repair is not None:
        actions.append(Action("repair_return", "Back from servicing" if open_repair.kind == "service"
                              else "Back from repair", "inventory.instrument_repair_return", tag, "main"))
    elif _may_become(instrument, S.IN_REPAIR, current_loan):
        actions.append(Action("repair", "Send to repair", "inventory.instrument_repair", tag))
    if instrument.status is S.MISSING:
        actions.append(Action("found", "Mark found", "inventory.instrument_found", tag, "main"))
    elif _may_become(instrument, S.MISSING, current_loan):
        actions.append(Action("missing", "Mark missing", "inventory.instrument_missing", tag))
    actions += [
        Action("edit", "Edit details", "inventory.instrument_edit", tag),
        Action("label", "Reprint label" if instrument.labelled_at else "Print label", "labels.print_labels", tag),
    ]
    if _may_become(instrument, S.WRITTEN_OFF, current_loan):
        actions.append(Action("write_off", "Write off…", "inventory.instrument_write_off", tag, "danger"))
    return [action for action in actions if action is not None]


# What the scan station offers beside opening the instrument's page: the next step, quickly.
_AT_THE_STATION = ("issue", "check_in", "check_out", "condition", "label")


def scan_station_actions(instrument: Instrument, *, current_loan=None, in_set: bool = False) -> list[Action]:
    """The scan station's actions for an instrument just scanned: its loan action, opening its page,
    recording its condition and its label (the page has the rest, repairs among them)."""
    actions = [action for action in available_actions(instrument, current_loan=current_loan, in_set=in_set)
               if action.name in _AT_THE_STATION]
    quiet = current_loan is not None or instrument.status is S.AVAILABLE
    opening = Action("open", "Open", "inventory.instrument_detail", {"tag": instrument.asset_tag},
                     "other" if quiet else "main")
    loan_first = 1 if actions and actions[0].name in ("issue", "check_in", "check_out") else 0
    rest = [Action(a.name, a.label, a.endpoint, a.params, "other") for a in actions[loan_first:]]
    return actions[:loan_first] + [opening] + rest
