"""Accounts blueprint: sign-up, login, logout, my account."""

from flask import Blueprint

bp = Blueprint("accounts", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    return "login"


@bp.route("/signup")
def signup():
    return "signup"


@bp.post("/logout")
def logout():
    return "logout"


@bp.get("/account")
def account():
    return "account"
