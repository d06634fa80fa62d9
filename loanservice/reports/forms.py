"""Report forms: saving a report as given to a funder, and recording an instrument's disposal."""
from wtforms import DateField, DecimalField, HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..forms import Form


class SaveDataReturnForm(Form):
    year = HiddenField()
    threshold = HiddenField()
    note = StringField("Note (who it was given to, and when)", validators=[Optional(), Length(max=300)])
    submit = SubmitField("Save as given to the funder")


class SaveRegisterForm(Form):
    funding = HiddenField()
    year = HiddenField()
    note = StringField("Note (who it was given to, and when)", validators=[Optional(), Length(max=300)])
    submit = SubmitField("Save as given to the funder")


class DisposalForm(Form):
    disposed_on = DateField("Date disposed of", validators=[DataRequired(message="Give the date it went.")])
    proceeds = DecimalField("Proceeds (£)", places=2, validators=[
        Optional(), NumberRange(min=0, message="Proceeds cannot be negative: give 0 if it fetched nothing.")],
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
        description="What the hub received for it (sold, scrapped for parts); leave empty if nothing.")
    submit = SubmitField("Record disposal")
