from decimal import Decimal

from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import HiddenInput

from ..forms import Form, csv_file_field
from .models import CONDITION_GRADES, CheckReason, InstrumentFamily

GRADE_CHOICES = [(grade, f"{grade} {label}") for grade, label in CONDITION_GRADES.items()]
MAX_MONEY = Decimal("99999999.99")  # the Numeric(10, 2) columns' limit


def money_amount(form, field) -> None:
    """An amount of money: a real number, not negative, that the database can hold."""
    value = field.data
    if value is None:
        return
    if not value.is_finite():
        raise ValidationError("Enter an amount in pounds, e.g. 120.50.")
    if value < 0:
        raise ValidationError("Cannot be negative.")
    if value > MAX_MONEY:
        raise ValidationError("That amount is too large.")


MONEY = dict(places=2, validators=[Optional(), money_amount])


def _grade_field(label="Condition"):
    return RadioField(label, choices=GRADE_CHOICES, coerce=int,
                      validators=[InputRequired(message="Choose a condition grade.")])


class InstrumentForm(Form):
    asset_tag = StringField(
        "Asset tag", validators=[Optional(), Length(max=32)],
        description="Leave empty to issue the next tag automatically.",
        render_kw={"autocapitalize": "characters", "spellcheck": "false"},
    )
    type_id = SelectField("Instrument type", coerce=int, validate_choice=False,
                          validators=[DataRequired(message="Choose a type.")])
    size = SelectField("Size", validate_choice=False,
                       description="Only the sizes this type comes in are accepted.")
    make = StringField("Make", validators=[Optional(), Length(max=100)])
    model = StringField("Model", validators=[Optional(), Length(max=100)])
    serial_number = StringField("Serial number", validators=[Optional(), Length(max=100)])
    accessories = StringField("Accessories", validators=[Optional(), Length(max=300)],
                              description="Comma-separated, e.g. case, bow, rosin.")
    location = StringField("Location", default="Store", validators=[DataRequired(), Length(max=120)],
                           description="Store and shelf, e.g. Store / Shelf B3.")
    condition_grade = _grade_field("Condition at intake")
    purchased_on = DateField("Purchase date", validators=[Optional()])
    purchase_cost = DecimalField("Purchase cost (£)", **MONEY)
    funding_source = StringField("Funding source", validators=[Optional(), Length(max=100)],
                                 description="e.g. DfE capital grant 2024.")
    replacement_value = DecimalField("Replacement value (£)", **MONEY)
    send_adapted = BooleanField("SEND-adapted")
    pat_due_on = DateField("PAT test due", validators=[Optional()],
                           description="For electric instruments.")
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=5000)])
    submit = SubmitField("Save instrument")


def photos_field():
    """Condition photos: a phone opens its camera (``capture``), a computer its files."""
    return MultipleFileField(
        "Photos (optional)", render_kw={"accept": "image/*", "capture": "environment"},
        description="Take or attach up to 6 photos of its condition; they are made smaller and their "
                    "location is removed. Only staff see them.")


class ConditionForm(Form):
    grade = _grade_field()
    reason = SelectField(
        "Why", default=CheckReason.INSPECTION.value,
        choices=[(r.value, r.label) for r in (CheckReason.INSPECTION, CheckReason.INTAKE)],
    )
    note = TextAreaField("Note", validators=[Optional(), Length(max=2000)],
                         description="What you saw: scratches, missing parts, damage.")
    photos = photos_field()
    submit = SubmitField("Record condition")


class RepairForm(Form):
    repairer = StringField("Repairer", validators=[DataRequired(), Length(max=200)])
    fault = TextAreaField("Fault", validators=[Optional(), Length(max=2000)])
    sent_on = DateField("Date sent", validators=[DataRequired()])
    expected_back_on = DateField("Expected back", validators=[Optional()])
    expected_cost = DecimalField("Expected cost (£)", **MONEY)
    photos = photos_field()
    submit = SubmitField("Send to repair")


class RepairReturnForm(Form):
    returned_on = DateField("Date back", validators=[DataRequired()])
    actual_cost = DecimalField("Actual cost (£)", **MONEY)
    work_done = TextAreaField("Work done", validators=[Optional(), Length(max=2000)])
    grade = _grade_field("Condition now")
    photos = photos_field()
    submit = SubmitField("Back from repair")


class WriteOffForm(Form):
    reason = TextAreaField("Reason", validators=[DataRequired(message="Give the reason."), Length(max=300)])
    confirm = BooleanField("I understand this instrument can no longer be lent or repaired",
                           validators=[DataRequired(message="Tick to confirm the write-off.")])
    submit = SubmitField("Write off")


class MissingForm(Form):
    note = TextAreaField("Note", validators=[Optional(), Length(max=300)],
                         description="Where it was last seen.")
    submit = SubmitField("Mark missing")


class FoundForm(Form):
    grade = _grade_field("Condition now")
    note = TextAreaField("Note", validators=[Optional(), Length(max=300)])
    submit = SubmitField("Mark found")


class _BulkForm(Form):
    # How many instruments the confirmation named: a different number at the post means the choice changed.
    count = IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class BulkMoveForm(_BulkForm):
    location = StringField("New location", validators=[DataRequired(message="Say where they go."), Length(max=120)],
                           description="The shelf or room they are kept in, e.g. Store shelf B.")
    submit = SubmitField("Move them")


class BulkRepairForm(_BulkForm):
    repairer = StringField("Repairer", validators=[DataRequired(message="Name the repairer."), Length(max=200)])
    fault = TextAreaField("What needs doing", validators=[Optional(), Length(max=2000)],
                          description="The same for every one, e.g. Summer service: restring and clean.")
    sent_on = DateField("Date sent", validators=[DataRequired()])
    expected_back_on = DateField("Expected back", validators=[Optional()])
    submit = SubmitField("Send them")


class BulkGradeForm(_BulkForm):
    grade = _grade_field("Condition found")
    note = TextAreaField("Note", validators=[Optional(), Length(max=2000)],
                         description="Kept with each instrument's condition check.")
    submit = SubmitField("Record the grade")


class ImportForm(Form):
    file = csv_file_field("CSV file", "Choose a CSV file.")
    submit = SubmitField("Check the file")


class ImportConfirmForm(Form):
    csv_text = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Import")


class TypeForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    family = SelectField("Family", choices=[(f.value, f.label) for f in InstrumentFamily])
    sizes = StringField("Sizes", validators=[Optional(), Length(max=300)],
                        description='Smallest first, comma-separated, e.g. 1/4, 1/2, 3/4, 4/4. Empty for one size.')
    hire_band = StringField("Hire band", default="A", validators=[DataRequired(), Length(max=8)])
    default_accessories = StringField("Usual accessories", validators=[Optional(), Length(max=300)])
    submit = SubmitField("Save type")
