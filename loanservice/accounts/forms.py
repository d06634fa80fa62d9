from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from ..forms import Form
from .models import Role


class LoginForm(Form):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})
    remember = BooleanField("Keep me signed in on this device")
    submit = SubmitField("Sign in")


class PasswordChangeForm(Form):
    current_password = PasswordField("Current password",
                                     validators=[DataRequired("Type your current password."), Length(max=200)],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField("New password", validators=[
        DataRequired("Choose a new password."),
        Length(min=10, max=200, message="Use between 10 and 200 characters.")],
                                 render_kw={"autocomplete": "new-password"},
                                 description="At least 10 characters, and not one of the common passwords.")
    confirm = PasswordField("New password again",
                            validators=[DataRequired("Type the new password again."),
                                        EqualTo("new_password", "The passwords differ.")],
                            render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Change password")


ROLE_CHOICES = [(role.value, role.label) for role in Role]


class UserForm(Form):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    school_id = SelectField("School (school users only)", coerce=int, validate_choice=False)
    password = PasswordField(
        "Password", validators=[Optional(), Length(min=10, max=200)],
        render_kw={"autocomplete": "new-password"},
        description="At least 10 characters, not a common password. Leave empty to keep the current password.",
    )
    active = BooleanField("Can sign in", default=True)
    submit = SubmitField("Save")


class SchoolForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    urn = StringField("URN", validators=[Optional(), Length(min=6, max=8)],
                      description="The school's Unique Reference Number, if known.")
    contact_name = StringField("Music lead", validators=[Optional(), Length(max=200)])
    contact_email = EmailField("Contact email", validators=[Optional(), Email(check_deliverability=False)])
    address = TextAreaField("Postal address", validators=[Optional(), Length(max=500)],
                            description="For delivery notes and letters about its classroom sets.",
                            render_kw={"rows": 4})
    submit = SubmitField("Save")


INVITE_ROLE_CHOICES = [(role.value, role.label) for role in Role if role is not Role.PARENT]


class InviteForm(Form):
    email = EmailField("Email", validators=[DataRequired("Enter their email address."),
                                            Email(check_deliverability=False), Length(max=254)])
    name = StringField("Name", validators=[DataRequired("Enter their name."), Length(max=200)])
    role = SelectField("Role", choices=INVITE_ROLE_CHOICES, default="staff")
    school_id = SelectField("School (school music leads only)", coerce=int, validate_choice=False)
    submit = SubmitField("Send the invitation")


class SetPasswordForm(Form):
    new_password = PasswordField("New password", validators=[
        DataRequired("Choose a password."),
        Length(min=10, max=200, message="Use between 10 and 200 characters.")],
                                 render_kw={"autocomplete": "new-password"},
                                 description="At least 10 characters, and not one of the common passwords.")
    confirm = PasswordField("Password again",
                            validators=[DataRequired("Type the password again."),
                                        EqualTo("new_password", "The passwords differ.")],
                            render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Set my password")


class ConfirmForm(Form):
    """A button that changes something: the CSRF token only."""

    submit = SubmitField("Confirm")
