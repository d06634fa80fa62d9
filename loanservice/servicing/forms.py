from wtforms import (
    DateField,
    DecimalField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..forms import Form
from ..inventory.forms import MONEY
from .models import Schedule


class PlanForm(Form):
    type_id = SelectField("Instrument type", coerce=int, validate_choice=False,
                          validators=[DataRequired(message="Choose the instrument type.")])
    name = StringField("Service", validators=[DataRequired(message="Name the service."), Length(max=100)],
                       description='e.g. "Restring", "PAT test", "Hygiene clean".')
    schedule = RadioField("When", choices=[(s.value, s.label) for s in Schedule], default=Schedule.EVERY_SUMMER.value,
                          validators=[DataRequired(message="Choose when it is due.")])
    interval_months = IntegerField("Every how many months", validators=[Optional(), NumberRange(1, 120)],
                                   description="Only for “Every few months”, e.g. 12 for a yearly PAT test.")
    submit = SubmitField("Save plan")


class DeletePlanForm(Form):
    submit = SubmitField("Remove plan")


class SendDueForm(Form):
    """The queue's chosen services: each ticked box is "instrument id:plan id"."""

    technician = StringField("Serviced by", validators=[DataRequired(message="Say who services them."),
                                                        Length(max=200)],
                             default="Store workshop")
    expected_back_on = DateField("Expected back", validators=[Optional()])
    submit = SubmitField("Send the ticked instruments to servicing")


class SendSetForm(Form):
    technician = StringField("Serviced by", validators=[DataRequired(message="Say who services the set."),
                                                        Length(max=200)],
                             default="Store workshop")
    work = TextAreaField("Work to do", validators=[Optional(), Length(max=2000)],
                         description="Leave empty for each instrument's plan that is due (or a general service).")
    expected_back_on = DateField("Expected back", validators=[Optional()],
                                 description="Bookings of the set start from this day at the earliest.")
    submit = SubmitField("Send the set to servicing")


class SetServicedForm(Form):
    work_done = TextAreaField("Work done", validators=[Optional(), Length(max=2000)])
    cost_each = DecimalField("Cost per instrument (£)", **MONEY)
    submit = SubmitField("Serviced: back in use")
