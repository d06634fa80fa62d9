"""Money forms: the shape of input only; the money services check what it means."""
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..forms import Form
from ..timeutil import today
from .models import PaymentMethod

METHODS = [(method.value, method.label) for method in PaymentMethod]


def _amount(label: str, message: str) -> DecimalField:
    return DecimalField(label, places=2, validators=[InputRequired(message=message)],
                        render_kw={"inputmode": "decimal", "autocomplete": "off"})


class PaymentForm(Form):
    amount = _amount("Amount received (£)", "Give the amount received.")
    method = RadioField("How it was paid", choices=METHODS,
                        validators=[InputRequired(message="Choose how it was paid.")])
    paid_on = DateField("Date received", default=today, validators=[DataRequired(message="Give the date.")])
    reference = StringField("Reference", validators=[Optional(), Length(max=100)],
                            description="The payer's reference on the bank statement, or the cheque number.")
    invoices = SelectMultipleField("Invoices to settle first", coerce=int, validate_choice=False,
                                   widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
                                   description="Leave them all unticked to settle the oldest first.")
    note = TextAreaField("Note", validators=[Optional(), Length(max=1000)])
    submit = SubmitField("Record payment")


class CreditForm(Form):
    amount = _amount("Amount to credit (£)", "Give the amount to credit.")
    reason = TextAreaField("Reason", validators=[DataRequired(message="Say why the invoice is credited."),
                                                 Length(max=1000)],
                           description="Kept with the credit note for staff; the family's statement shows only "
                                       "the invoice it is against.")
    submit = SubmitField("Issue credit note")


class WriteOffForm(Form):
    reason = TextAreaField("Reason", validators=[DataRequired(message="Say why the debt is written off."),
                                                 Length(max=1000)])
    confirm = BooleanField("I understand the hub gives up on what is left of this invoice",
                           validators=[DataRequired(message="Tick to confirm the write-off.")])
    submit = SubmitField("Write off")


class RefundForm(Form):
    amount = _amount("Amount to refund (£)", "Give the amount to refund.")
    method = RadioField("How it is paid back", choices=METHODS,
                        validators=[InputRequired(message="Choose how the money is paid back.")])
    reason = TextAreaField("Reason", validators=[Optional(), Length(max=1000)])
    submit = SubmitField("Record refund")


class PayerForm(Form):
    name = StringField("Payer's name", validators=[Optional(), Length(max=200)],
                       description="A carer, a foster agency, the local authority... Leave all three empty to "
                                   "invoice the hirer.")
    email = StringField("Payer's email", validators=[Optional(), Length(max=254)])
    address = TextAreaField("Payer's postal address", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Save who pays")


class ButtonForm(Form):
    """A button that posts (with its CSRF token)."""


class RunPreviewForm(Form):
    class Meta:
        csrf = False  # a GET form: the preview writes nothing

    term = SelectField("Term to invoice", coerce=int, validators=[InputRequired(message="Choose the term.")])
    submit = SubmitField("Preview")


class RunConfirmForm(Form):
    term = HiddenField(validators=[InputRequired()])
    count = HiddenField(validators=[InputRequired()])
    total = HiddenField(validators=[InputRequired()])
    submit = SubmitField("Issue the invoices")


class InstalmentChoiceForm(Form):
    pays_by_instalments = RadioField(
        "How this account pays each term's invoice",
        choices=[("no", "In one payment, by the invoice's due date"), ("yes", "By monthly instalments")],
        validators=[InputRequired(message="Choose how the account pays.")])
    submit = SubmitField("Save how the account pays")


class SplitInvoiceForm(Form):
    confirm = BooleanField("The payer has agreed to pay this invoice by these instalments",
                           validators=[DataRequired(message="Tick to confirm the payer agreed.")])
    submit = SubmitField("Pay by instalments")


DEPOSIT_OUTCOMES = [("refunded", "Refund it (the instrument came back in good order)"),
                    ("kept", "Keep it against damage or loss")]


class DepositForm(Form):
    outcome = RadioField("What happens to the deposit", choices=DEPOSIT_OUTCOMES,
                         validators=[InputRequired(message="Choose whether the deposit is refunded or kept.")])
    method = SelectField("Pay the refund back", choices=[("", "Leave it as credit on the account")] + METHODS,
                         validators=[Optional()],
                         description="A refund first settles anything the account owes; what is left is credit, "
                                     "or paid back this way.")
    reason = TextAreaField("Reason", validators=[Optional(), Length(max=1000)],
                           description="Needed when the deposit is kept: the damage, or the loss.")
    submit = SubmitField("Save")


FEE_BASES = [("set", "For the whole set, a term"), ("instrument", "For each instrument in the set, a term")]


class SetFeeForm(Form):
    basis = RadioField("The fee is charged", choices=FEE_BASES,
                       validators=[InputRequired(message="Choose per set or per instrument.")])
    fee = DecimalField("Hire fee (£)", places=2, validators=[InputRequired(message="Give the fee (0 for free).")],
                       render_kw={"inputmode": "decimal", "autocomplete": "off"})
    submit = SubmitField("Save the fee")
