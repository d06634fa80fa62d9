from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp
from wtforms.widgets import HiddenInput

from ..borrowers.models import RemissionCategory
from ..borrowers.services import ClaimDecision
from ..forms import Form
from ..inventory.forms import MONEY, _grade_field, money_amount, photos_field
from .models import RemissionKind

BORROWER_PATTERN = r"^(pupil|family|school|other)-\d{1,10}$"
# At the desk and at handover: the claim is checked now, or turned down, before the loan copies it.
CLAIM_DECISIONS = [(ClaimDecision.VERIFY.value, "Verified today: the loan takes the remission"),
                   (ClaimDecision.REFUSE.value, "Refused: the loan is at the full fee")]


class CheckOutForm(Form):
    tag = StringField("Instrument", validators=[DataRequired(message="Scan or type the instrument's tag."),
                                                Length(max=200)],
                      description="Scan its label or type its asset tag.",
                      render_kw={"autocapitalize": "characters", "spellcheck": "false", "autocomplete": "off"})
    # Found by name (a hub has thousands of pupils): "Find" lists the matches as choices.
    who = StringField("Find the borrower", validators=[Optional(), Length(max=100)],
                      description="Part of a pupil's, family's, school's or other borrower's name.",
                      render_kw={"autocomplete": "off", "spellcheck": "false"})
    find = SubmitField("Find")
    borrower = RadioField("Borrower", validate_choice=False,
                          validators=[DataRequired(message="Find and choose the borrower."),
                                      Regexp(BORROWER_PATTERN, message="Find and choose the borrower.")])
    started_on = DateField("Start date", validators=[DataRequired(message="Give the date it was handed over.")])
    due_on = DateField("Due date", validators=[Optional()],
                       description="Leave empty for the end of the term it starts in.")
    accessories = StringField("Accessories issued", validators=[Optional(), Length(max=300)],
                              description="Leave empty for the instrument's own list.")
    condition_grade = _grade_field("Condition at issue")
    condition_note = TextAreaField("Condition note", validators=[Optional(), Length(max=2000)])
    fee_per_term = DecimalField("Fee per term (£)", **MONEY,
                                description="Leave empty for the fee of the instrument's hire band.")
    charge_per_term = DecimalField("Charge per term (£)", **MONEY,
                                   description="Leave empty for the fee, less the pupil's remission.")
    deposit = DecimalField("Deposit (£)", **MONEY, description="Leave empty for the band's deposit.")
    # Shown only when the pupil's parent stated a remission category that nobody has checked yet.
    remission_claim = RadioField("Remission the parent or carer claims", validate_choice=False,
                                 validators=[Optional()], choices=CLAIM_DECISIONS)
    # Under the hub's debt setting (DEBT_BLOCK_DAYS, DEBT_BLOCK_AMOUNT); the override is audited with what is owed.
    override_debt = BooleanField("Lend despite the debt",
                                 description="Only if the account is blocked for debt and the loan should go ahead.")
    submit = SubmitField("Lend")


class CheckInForm(Form):
    grade = _grade_field("Condition at return")
    note = TextAreaField("Note", validators=[Optional(), Length(max=2000)],
                         description="What you saw; required when damaged.")
    damaged = BooleanField("Damaged: send it to repair")
    returned_on = DateField("Date returned", validators=[DataRequired(message="Give the date it came back.")])
    photos = photos_field()
    submit = SubmitField("Check in")


class IssueForm(Form):
    submit = SubmitField("Issue instrument")


class CancelPendingForm(Form):
    note = TextAreaField("Why (optional)", validators=[Optional(), Length(max=2000)],
                         description="Kept with the loan, e.g. the family changed their mind.")
    submit = SubmitField("Cancel the loan")


class RenewForm(Form):
    due_on = DateField("New due date", validators=[Optional()],
                       description="Leave empty for the end of the next term.")
    # The due date the form was shown with: a second tab, or Back and post again, must not renew twice.
    was_due_on = DateField(widget=HiddenInput(), validators=[Optional()])
    submit = SubmitField("Renew")


class ExchangeForm(Form):
    tag = StringField("Scan the next-size instrument", validators=[Optional(), Length(max=200)],
                      description="Scan its label or type its tag, or pick one of the free instruments below.",
                      render_kw={"autocapitalize": "characters", "spellcheck": "false", "autocomplete": "off"})
    # The free instruments of the next size (choices set by the view): pick one instead of scanning.
    pick = RadioField("Or pick a free instrument of the next size", validate_choice=False, validators=[Optional()])
    grade = _grade_field("Condition of the one coming back")
    note = TextAreaField("Note", validators=[Optional(), Length(max=2000)])
    submit = SubmitField("Exchange")

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if not (self.tag.data or "").strip() and not self.pick.data:
            self.tag.errors.append("Scan or type the tag of the next-size instrument, or pick one.")
            return False
        return True

    @property
    def chosen_code(self) -> str:
        """What was scanned, or else the tag picked."""
        return (self.tag.data or "").strip() or self.pick.data


class LostForm(Form):
    note = TextAreaField("What happened", validators=[DataRequired(message="Say what happened."), Length(max=250)])
    replacement_owed = DecimalField("Replacement cost owed (£)", **MONEY,
                                    description="Leave empty for the instrument's replacement value.")
    submit = SubmitField("Mark lost or stolen")


class TermForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=60)], description="e.g. Autumn 2026")
    starts_on = DateField("Starts", validators=[DataRequired()])
    ends_on = DateField("Ends", validators=[DataRequired()])
    submit = SubmitField("Add term")


class ClosureForm(Form):
    term = SelectField("Term", coerce=int, validate_choice=False, validators=[DataRequired(message="Choose a term.")])
    name = StringField("Name", validators=[DataRequired(message="Name the closure."), Length(max=60)],
                       description="e.g. Half-term, or INSET day.")
    starts_on = DateField("First day closed", validators=[DataRequired(message="Give the first day closed.")])
    ends_on = DateField("Last day closed", validators=[DataRequired(message="Give the last day closed.")],
                        description="The same day for a single day.")
    submit = SubmitField("Add closure")


class RemoveForm(Form):
    """A removal button: a CSRF token and the button."""

    submit = SubmitField("Remove")


class RollOverForm(Form):
    from_term = SelectField("Loans due at the end of", coerce=int, validate_choice=False,
                            validators=[DataRequired(message="Choose a term.")])
    to_term = SelectField("Move to the end of", coerce=int, validate_choice=False,
                          validators=[DataRequired(message="Choose a term.")])
    submit = SubmitField("Roll over")


class FeeBandForm(Form):
    band = StringField("Hire band", validators=[DataRequired(), Length(max=8)], description="e.g. A, B or C.")
    fee_per_term = DecimalField("Fee per term (£)", places=2, validators=[InputRequired(), money_amount])
    deposit = DecimalField("Deposit (£)", places=2, default=0, validators=[Optional(), money_amount])
    submit = SubmitField("Save band")


class RemissionRuleForm(Form):
    category = SelectField("Category", choices=[(c.value, c.label) for c in RemissionCategory
                                                if c is not RemissionCategory.NONE])
    kind = SelectField("Pays", choices=[(k.value, k.label) for k in RemissionKind])
    value = DecimalField("Percentage off, or the fixed charge (£)", places=2, default=0,
                         validators=[Optional(), money_amount], description="Not used when free.")
    submit = SubmitField("Save rule")
