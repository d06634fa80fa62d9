from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..forms import Form
from ..inventory.forms import GRADE_CHOICES


class SetForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)], description='e.g. "Ukulele set A".')
    tag = StringField("Set tag", validators=[DataRequired(), Length(max=32)],
                      description="The set's own label, e.g. SET-UKE-A.",
                      render_kw={"autocapitalize": "characters", "spellcheck": "false"})
    tags = TextAreaField("Instruments", validators=[DataRequired(message="List the instruments.")],
                         description="Scan or type one asset tag per line.",
                         render_kw={"autocapitalize": "characters", "spellcheck": "false", "rows": 10})
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)])
    submit = SubmitField("Save set")


class SetCheckOutForm(Form):
    school_id = SelectField("School", coerce=int, validate_choice=False,
                            validators=[DataRequired(message="Choose the school.")])
    started_on = DateField("Start date", validators=[DataRequired()])
    due_on = DateField("Due back", validators=[Optional()],
                       description="Leave empty for the end of the term it starts in.")
    pupils = IntegerField("Pupils in the class", validators=[
        Optional(), NumberRange(min=1, max=200, message="Give the number of pupils taught, from 1 to 200.")],
        description="For the hub's data return; leave empty if not known (the instruments are counted).",
        render_kw={"inputmode": "numeric"})
    year_group = IntegerField("Year group", validators=[
        Optional(), NumberRange(min=0, max=13, message="A year group is 0 (Reception) to 13.")],
        description="0 for Reception; leave empty for a mixed or unknown class.", render_kw={"inputmode": "numeric"})
    submit = SubmitField("Lend the whole set")


def _grade_or_none(value) -> int | None:
    """A chosen grade, or None for the empty choice ("as it went out")."""
    return None if value in (None, "") else int(value)


class ScanInForm(Form):
    code = StringField("Scan an item", validators=[DataRequired(message="Scan a label or type an asset tag."),
                                                   Length(max=500)],
                       description="Scan the label, or type the asset tag and press Enter.",
                       render_kw={"autocapitalize": "characters", "spellcheck": "false", "autocomplete": "off",
                                  "autofocus": True, "data-scan": True})
    # Each item comes back as it went out unless a grade is chosen for it: the choice is for one scan.
    grade = RadioField("Condition", choices=[("", "As it went out"), *GRADE_CHOICES], coerce=_grade_or_none,
                       default=None, description="Each item comes back as it went out. A grade chosen here is "
                                                 "for the next item scanned only.")
    damaged = BooleanField("Damaged: send it to repair")
    note = StringField("Note", validators=[Optional(), Length(max=500)],
                       description="Needed when the item is damaged: say what is wrong.")
    submit = SubmitField("Check in")


class MissingItemForm(Form):
    code = StringField("Item", validators=[DataRequired(), Length(max=500)])
    note = StringField("Note", validators=[Optional(), Length(max=250)])
    submit = SubmitField("Report missing")


class TakeHomeForm(Form):
    code = StringField("Item", validators=[DataRequired(message="Scan or type the item's tag."), Length(max=500)],
                       render_kw={"autocapitalize": "characters", "spellcheck": "false", "autocomplete": "off"})
    pupil_id = SelectField("Pupil", coerce=int, validate_choice=False,
                           validators=[DataRequired(message="Choose the pupil.")])
    agreement_signed_on = DateField("Parent or carer signed the loan agreement on", validators=[Optional()],
                                    description="The family is responsible for it until it is back in the set.")
    due_on = DateField("Back in the set by", validators=[Optional()],
                       description="Leave empty for the date the set is due back.")
    submit = SubmitField("Lend it home")


class BackToSetForm(Form):
    code = StringField("Item", validators=[DataRequired(), Length(max=500)])
    submit = SubmitField("Back in the set")


class DeleteSetForm(Form):
    """Nothing to fill in: the confirmation, and the form's CSRF token."""

    submit = SubmitField("Delete the set")
