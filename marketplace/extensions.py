"""Every Flask extension object, created once and bound to the app in ``create_app``.

Modules import extensions from here, never from the app factory, so importing a view never
imports the factory.
"""

from flask_babel import Babel, lazy_gettext
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from marketplace.database import db
from marketplace.models import User

__all__ = ["babel", "compress", "csrf", "db", "limiter", "login_manager"]

csrf = CSRFProtect()
babel = Babel()  # languages and time zone: bound in marketplace.i18n
compress = Compress()  # configured and bound in marketplace.serving
limiter = Limiter(key_func=get_remote_address, strategy="fixed-window", headers_enabled=True)

login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = lazy_gettext("Please log in to continue.")
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session stores "<id>:<session_version>"; a bumped version logs every session out."""
    try:
        raw_id, raw_version = user_id.split(":", 1)
        user = db.session.get(User, int(raw_id))
        version = int(raw_version)
    except (ValueError, TypeError):
        return None
    if user is None or user.session_version != version or not user.active:
        return None
    return user
