from wtforms import DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, NumberRange

from ..forms import Form


class ButtonForm(Form):
    """A bare form: its CSRF token guards a one-button action."""


class HoldForm(Form):
    reason = StringField("Reason for the hold", validators=[DataRequired("Give the reason for the hold."),
                                                             Length(max=300)],
                         description="For example: debt recovery, an insurance claim, a safeguarding matter.")


class PolicyForm(Form):
    family_years = IntegerField("Families, pupils, agreements, invoices and payments (years)",
                                validators=[InputRequired(), NumberRange(1, 100)],
                                description="Kept this many years after the last loan ended and the account "
                                            "was settled.")
    reservation_years = IntegerField("Reservations that never became loans (years)",
                                     validators=[InputRequired(), NumberRange(1, 100)])
    account_years = IntegerField("Parent accounts with nothing else (years after the last sign-in)",
                                 validators=[InputRequired(), NumberRange(1, 100)])
    outbox_days = IntegerField("Email bodies in the outbox (days)", validators=[InputRequired(), NumberRange(1, 3650)])


class AccessRequestForm(Form):
    family_id = IntegerField("Family number", validators=[InputRequired("Give the family's number.")],
                             description="Shown on the family's Data and privacy page.")
    requester_name = StringField("Who asked", validators=[DataRequired(), Length(max=200)])
    relationship_to_child = StringField("Their relationship to the child", validators=[DataRequired(), Length(max=100)],
                                        description="For example: mother, father, carer, the pupil (18 or over).")
    received_on = DateField("Received on", validators=[InputRequired()],
                            description="The deadline is one calendar month after this date.")


class ExtendForm(Form):
    months = SelectField("Extend by", choices=[("1", "1 month"), ("2", "2 months")], validators=[DataRequired()])
    reason = TextAreaField("Why it needs longer", validators=[DataRequired("Say why the request needs longer."),
                                                              Length(max=2000)])


class EraseForm(Form):
    confirm = StringField("Type ERASE to confirm", filters=[lambda value: (value or "").strip().upper()],
                          validators=[DataRequired("Type ERASE to confirm."),
                                      AnyOf(["ERASE"], message="Type ERASE to confirm.")])


class NoticeForm(Form):
    text = TextAreaField("Privacy notice", validators=[DataRequired("Write the privacy notice."), Length(max=50000)],
                         description="Paragraphs separated by a blank line. Saving publishes the next version; "
                                     "parents who registered under an earlier one keep the version they accepted.",
                         render_kw={"rows": 16})
