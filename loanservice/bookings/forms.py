from wtforms import DateField, IntegerField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..forms import Form


class BookingForm(Form):
    school_id = SelectField("School", coerce=int, validate_choice=False,
                            validators=[DataRequired(message="Choose the school.")])
    type_id = SelectField("Instrument", coerce=int, validate_choice=False,
                          validators=[DataRequired(message="Choose the instrument.")])
    pupils = IntegerField("Number of pupils", validators=[InputRequired(message="Say how many pupils will play."),
                                                          NumberRange(min=1, max=200)],
                          description="One instrument each: the set needs at least this many.")
    period = SelectField("For", validators=[DataRequired(message="Choose a term or school year.")],
                         validate_choice=False, description="A coming term, or a whole school year.")
    sizes = StringField("Sizes wanted (strings)", validators=[Optional(), Length(max=200)],
                        description='For violins, violas and cellos, e.g. "10 x 1/4, 20 x 1/2".')
    teacher = StringField("Teacher", validators=[Optional(), Length(max=200)])
    preferred_week = DateField("Preferred delivery week", validators=[Optional()],
                               description="Any day of the week you would like it delivered.")
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)],
                          description="Access for the van, where to leave it, anything the store should know.")
    submit = SubmitField("Ask for the set")


class AllocateForm(Form):
    set_id = RadioField("Set", coerce=int, validate_choice=False,
                        validators=[InputRequired(message="Choose the set to allocate.")])
    delivery_on = DateField("Delivery day", validators=[Optional()],
                            description="Leave empty for the preferred week, or the first day of the period.")
    collection_on = DateField("Collection day", validators=[Optional()],
                              description="Leave empty for the last day of the period.")
    submit = SubmitField("Allocate the set")


class DeclineForm(Form):
    reason = TextAreaField("Reason (the school sees it)", validators=[
        DataRequired(message="Say why, for the school."), Length(max=500)])
    submit = SubmitField("Decline")


class ScheduleForm(Form):
    delivery_on = DateField("Delivery day", validators=[Optional()])
    collection_on = DateField("Collection day", validators=[Optional()])
    submit = SubmitField("Save the dates")


class ButtonForm(Form):
    """Nothing to fill in: a confirmation and the form's CSRF token."""

    submit = SubmitField("Confirm")
