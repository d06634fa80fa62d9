from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import HiddenInput

from ..forms import Form
from .models import NoticeKind, NoticeLetter


class HireConditionsForm(Form):
    text = TextAreaField("Terms and conditions", validators=[DataRequired(message="Write the terms."),
                                                             Length(max=50_000)],
                         description="Separate paragraphs with a blank line. Publishing makes a new version; "
                                     "agreements already made keep theirs.", render_kw={"rows": 18})
    submit = SubmitField("Publish a new version")


class SignForm(Form):
    full_name = StringField("Your full name", validators=[DataRequired(message="Type your full name."),
                                                          Length(max=200)], render_kw={"autocomplete": "name"})
    # The page shows this label with "loan agreement (PDF)" linked to the PDF (templates/documents/agreement_page.html).
    agreed = BooleanField("I have read the loan agreement (PDF), including its terms and conditions, and I agree to "
                          "them")
    sha256 = HiddenField(validators=[Regexp(r"^[0-9a-f]{64}$", message="Open the agreement again.")])
    submit = SubmitField("Sign the agreement")


class DeskSignatureForm(Form):
    signer_name = StringField("Signed by (full name)", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Record the signature")


class ButtonForm(Form):
    """A button that posts with a CSRF token and nothing else."""


class StageForm(Form):
    kind = SelectField("What it chases", choices=[(k.value, k.label) for k in NoticeKind],
                       default=NoticeKind.LOAN.value)
    name = StringField("Name", validators=[DataRequired(), Length(max=60)])
    days_overdue = IntegerField("Days after the due date", validators=[DataRequired(), NumberRange(1, 400)],
                                description="Overdue instruments: not counting school holidays or closures such as "
                                            "half-terms; weekends in term time count. Unpaid invoices: calendar "
                                            "days. A later stage follows the letter before it by the days between "
                                            "the stages.")
    letter = SelectField("Letter", choices=[(k.value, k.label) for k in NoticeLetter])
    return_within_days = IntegerField("Return or pay within (days)", validators=[Optional(), NumberRange(1, 120)],
                                      description="For a final notice: the date given to return the instrument "
                                                  "(or pay the invoice) by.")
    submit = SubmitField("Add the stage")


class PreviewForm(Form):
    """Which day's notices the page shows (a GET form: it changes nothing)."""

    class Meta:
        csrf = False

    as_of = DateField("Show the notices due as of", validators=[DataRequired(message="Give a date.")],
                      description="Today, or an earlier day a run was missed; a later day only to look ahead.")
    submit = SubmitField("Show")


class RunForm(Form):
    # The day shown above: what is sent is what the page listed.
    as_of = DateField("As of", validators=[DataRequired()], widget=HiddenInput(), id="run-as-of")
    submit = SubmitField("Send these notices")
