from wtforms import DateField, RadioField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from ..forms import Form
from ..loans.forms import CLAIM_DECISIONS


class ReserveForm(Form):
    pupil_id = SelectField("Child", coerce=int, validate_choice=False)
    # "type id|size": one choice per type and size, so no script is needed to match them.
    item = SelectField("Instrument and size", validate_choice=False, validators=[DataRequired()],
                       description="Not sure of the size? See the size guide in the catalogue; the teacher "
                                   "can measure your child.")
    preferred_start_on = DateField("Preferred start date", validators=[DataRequired()])
    submit = SubmitField("Reserve")


class AllocateForm(Form):
    tag = StringField("Asset tag", validators=[DataRequired(), Length(max=40)])
    submit = SubmitField("Allocate")


class CollectForm(Form):
    due_on = DateField("Due back (leave empty for the end of term)", validators=[Optional()])
    remission_claim = RadioField("Remission the parent or carer claims", validate_choice=False,
                                 validators=[Optional()], choices=CLAIM_DECISIONS)
    submit = SubmitField("Handed over")


class ButtonForm(Form):
    """A bare form: its CSRF token guards a one-button action."""
