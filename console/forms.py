"""WTForms used by the views (Flask-WTF adds the CSRF token)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from console.permissions import STAFF_ROLES


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])


class MfaCodeForm(FlaskForm):
    # Six digits from the authenticator app, or a backup code such as "3f2a9-c41d0".
    code = StringField("Code", validators=[DataRequired(), Length(max=32)])


def _at_least_one(form, field):
    # Not DataRequired: its "required" flag would make every checkbox required in the browser.
    if not field.data:
        raise ValidationError("Choose at least one role.")


class InviteStaffForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(message="Type the email the invitation goes to."),
                                            Length(max=254)])
    roles = SelectMultipleField("Roles", choices=list(STAFF_ROLES),
                                validators=[_at_least_one],
                                widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(message="Type the email of your console account."),
                                            Length(max=254)])


class SetPasswordForm(FlaskForm):
    # The strength rules are the same as `console create-staff` (workflows/staff.py).
    password = PasswordField("New password", validators=[DataRequired(message="Choose a password."),
                                                         Length(max=128)])
    confirm = PasswordField("The same password again", validators=[
        DataRequired(message="Type the password a second time."),
        EqualTo("password", message="The two passwords differ: type the same one twice.")])
