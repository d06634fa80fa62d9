"""Forms of the bank import and the finance exports: the shape of input only."""
from wtforms import BooleanField, DateField, HiddenField, SelectMultipleField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from ..forms import Form, csv_file_field


class BankUploadForm(Form):
    file = csv_file_field("Bank statement (CSV)", "Choose the bank statement's CSV file.")
    submit = SubmitField("Check the statement")


class BankConfirmForm(Form):
    csv_text = HiddenField(validators=[DataRequired()])
    filename = HiddenField(validators=[Length(max=200)])
    # The duplicate lines (by line number) staff ticked as real payments of their own.
    separate = SelectMultipleField(coerce=int, validate_choice=False)
    check_again = BooleanField()  # the preview again with the ticked lines, importing nothing
    submit = SubmitField("Import the payments")


class PeriodForm(Form):
    """A period of the finance export (a GET form: nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    start = DateField("From", validators=[DataRequired(message="Give the first day of the period.")])
    end = DateField("To", validators=[DataRequired(message="Give the last day of the period.")])
    submit = SubmitField("Download the finance export")

    def validate_end(self, field):
        if self.start.data and field.data and field.data < self.start.data:
            raise ValidationError("The period ends before it starts.")
