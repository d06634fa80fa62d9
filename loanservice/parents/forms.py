from wtforms import EmailField, PasswordField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from ..accounts.services import MIN_PASSWORD_LENGTH
from ..borrowers.models import RemissionCategory
from ..forms import Form


def _password(label="Password"):
    return PasswordField(label, validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
                         render_kw={"autocomplete": "new-password"},
                         description=f"At least {MIN_PASSWORD_LENGTH} characters, and not one of the common passwords.")


class RegisterForm(Form):
    name = StringField("Your name", validators=[DataRequired(), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
                       render_kw={"autocomplete": "email"})
    password = _password()
    confirm = PasswordField("Password again", validators=[DataRequired(), EqualTo("password", "The passwords differ.")],
                            render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Create account")


class ResetRequestForm(Form):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
                       render_kw={"autocomplete": "email"})
    submit = SubmitField("Send me a link")


class ResetForm(Form):
    password = _password("New password")
    confirm = PasswordField("New password again",
                            validators=[DataRequired(), EqualTo("password", "The passwords differ.")],
                            render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Set password")


class ButtonForm(Form):
    """A bare form: its CSRF token guards a one-button action."""


YEAR_CHOICES = [("", "Not at school yet / not known"), ("0", "Reception")] + [
    (str(n), f"Year {n}") for n in range(1, 14)]
CLAIM_CHOICES = [(c.value, "None of these" if c is RemissionCategory.NONE else c.label) for c in RemissionCategory]


class ChildForm(Form):
    name = StringField("Child's name", validators=[DataRequired(), Length(max=200)])
    school_id = SelectField("School", coerce=int, validate_choice=False,
                            description="Choose \"Not listed\" if the school is not in the list.")
    year_group = SelectField("Year group", choices=YEAR_CHOICES, validators=[Optional()])
    claimed_remission = SelectField(
        "Eligible for help with the fee?", choices=CLAIM_CHOICES,
        description="For example free school meals. Hub staff check this with you before it applies.")
    submit = SubmitField("Save")


class AskForm(Form):
    kind = SelectField("What would you like to do?", choices=[("return", "Return the instrument"),
                                                               ("next_size", "Exchange it for the next size")])
    note = TextAreaField("Anything the store should know (optional)", validators=[Optional(), Length(max=1000)])
    submit = SubmitField("Send to the store")


