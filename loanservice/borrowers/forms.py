from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, Email, Length, NumberRange, Optional
from wtforms.widgets import HiddenInput

from ..forms import Form
from .models import RemissionCategory
from .services import ClaimDecision


class FamilyForm(Form):
    name = StringField("Parent or carer's name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[Optional(), Email(), Length(max=254)])
    phone = StringField("Phone", validators=[Optional(), Length(max=40)])
    address = TextAreaField("Postal address", validators=[Optional(), Length(max=500)],
                            description="Where letters go when the family has no email.",
                            render_kw={"rows": 4, "autocomplete": "street-address"})
    submit = SubmitField("Save family")


class PupilForm(Form):
    name = StringField("Pupil's name", validators=[DataRequired(), Length(max=200)])
    school_id = SelectField("School", coerce=int, validate_choice=False)
    year_group = IntegerField("Year group", validators=[Optional(), NumberRange(min=0, max=13)],
                              description="0 for Reception.")
    remission_category = SelectField("Remission", choices=[(c.value, c.label) for c in RemissionCategory])
    remission_verified_on = DateField("Eligibility verified on", validators=[Optional()],
                                      description="Record the category and the date checked, not the evidence.")
    send = BooleanField("SEND (optional; only if the loan needs it)",
                        description="Special educational needs or disabilities: asked only so that an adapted "
                                    "instrument can be offered. Leave it unticked otherwise; it is special "
                                    "category data and is removed when the family is anonymised.")
    submit = SubmitField("Add pupil")


class ClaimForm(Form):
    """One button: verify (today) or refuse the remission a parent claimed for their child."""

    decision = StringField(widget=HiddenInput(), validators=[AnyOf([d.value for d in ClaimDecision])])


class OtherBorrowerForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    description = StringField("What they are", validators=[Optional(), Length(max=200)],
                              description="For example: Youth orchestra, Peripatetic teacher, Partner charity.")
    email = EmailField("Email", validators=[Optional(), Email(), Length(max=254)])
    phone = StringField("Phone", validators=[Optional(), Length(max=40)])
    submit = SubmitField("Save")
