from wtforms import HiddenField, RadioField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from ..forms import Form
from .models import Place, Resolution
from .services import Outcome


class StartForm(Form):
    place = RadioField("What to count", choices=[(p.value, p.label) for p in Place], default=Place.SHELF.value,
                       validators=[DataRequired(message="Choose what to count.")])
    location = SelectField("Shelf or location", validate_choice=False,
                           description="Only for a shelf or location.")
    school_id = SelectField("School", coerce=int, validate_choice=False, description="Only for a school's sets.")
    submit = SubmitField("Start the stocktake")


class ScanForm(Form):
    code = StringField("Scan an instrument", validators=[DataRequired(message="Scan a label or type an asset tag."),
                                                         Length(max=500)],
                       description="Scan each instrument's label, or type its asset tag and press Enter.",
                       render_kw={"autocapitalize": "characters", "spellcheck": "false", "autocomplete": "off",
                                  "autofocus": True, "data-scan": True})
    submit = SubmitField("Count it")


class FinishForm(Form):
    submit = SubmitField("Finish the count")


class ResolveOneForm(Form):
    item_id = HiddenField(validators=[DataRequired()])
    action = HiddenField(validators=[DataRequired()])

    def resolution(self) -> Resolution | None:
        try:
            return Resolution(self.action.data)
        except ValueError:
            return None


class ResolveAllForm(Form):
    """The confirmation of a bulk change: the outcome, and how many the person was shown."""

    outcome = HiddenField(validators=[DataRequired()])
    count = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Confirm")

    def chosen_outcome(self) -> Outcome | None:
        try:
            return Outcome(self.outcome.data)
        except ValueError:
            return None

    def shown_count(self) -> int | None:
        return int(self.count.data) if (self.count.data or "").isdigit() and len(self.count.data) < 9 else None
