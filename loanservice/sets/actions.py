"""What can be done with a classroom set just scanned: the scan station's buttons, decided here."""
from ..inventory.actions import Action
from .models import ClassroomSet, SetLoan


def set_scan_actions(classroom_set: ClassroomSet, set_loan: SetLoan | None) -> list[Action]:
    """Check its items in while it is out (``set_loan``: its open loan), open it, print its label."""
    actions = []
    if set_loan is not None:
        actions.append(Action("check_in", "Check items in", "sets.check_in", {"set_loan_id": set_loan.id}, "main"))
    actions += [
        Action("open", "Open the set", "sets.detail", {"set_id": classroom_set.id},
               "other" if set_loan is not None else "main"),
        Action("label", "Print the set's label", "labels.print_set_label", {"set_id": classroom_set.id}),
    ]
    return actions
