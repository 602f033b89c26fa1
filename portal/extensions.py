"""Flask extensions, created unbound and initialised in create_app."""

from flask_babel import Babel
from flask_htmx import HTMX
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = HTMX()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite is the embedded default shared by the web process and the worker: write-ahead logging
    lets readers and a writer work at once, and a busy timeout waits for a lock instead of failing.
    synchronous=NORMAL is SQLite's advice for WAL: a commit survives any process dying (a killed worker);
    only a power cut may lose the last commits (production runs PostgreSQL)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


# SQLSTATE class 57P: the server is shutting down or restarting (57P01 admin_shutdown, 57P02 crash_shutdown,
# 57P03 cannot_connect_now). psycopg raises the server's "terminating connection" message before it marks
# the connection broken, so SQLAlchemy would not see a disconnect: pool_pre_ping raised it instead of
# reconnecting, and a session's rollback raised it again. Marked a disconnect, the pool drops the
# connection (and the others of its generation) and the next checkout connects afresh.
@event.listens_for(Engine, "handle_error")
def _server_restarted(context):
    sqlstate = getattr(context.original_exception, "sqlstate", None)
    if sqlstate and sqlstate.startswith("57P"):
        context.is_disconnect = True
