"""WTForms used by the views (Flask-WTF adds the CSRF token)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])


class MfaCodeForm(FlaskForm):
    # Six digits from the authenticator app, or a backup code such as "3f2a9-c41d0".
    code = StringField("Code", validators=[DataRequired(), Length(max=32)])
