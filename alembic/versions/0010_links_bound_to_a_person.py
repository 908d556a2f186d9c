"""links bound to a person, one row per mailbox, ids never re-used, signup requests

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-30

* ``subscribers.link_key``: a random key in every link (filled for existing rows, so links
  sent before this migration carry no key; see docs/subscribers.md for which still work).
* ``subscribers.email_key``: the mailbox (address case-folded, domain IDNA-encoded), unique.
  Existing rows are re-normalised; rows that turn out to be one mailbox are merged into one:
  the row whose status says most about the owner's wish is kept (bounced/complained, then
  unsubscribed, then active, then pending; the oldest on a tie), the others' consent records
  and deliveries move to it, and the others are deleted.
* SQLite: the table is rebuilt with AUTOINCREMENT so an erased id is never given out again
  (PostgreSQL's sequence never re-uses ids). The rebuild's DROP TABLE would cascade to the
  consent records and deliveries, so they are kept aside and put back.
* ``signup_requests``: the choices of a signup for a known address, until its owner confirms.
"""

import hashlib
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from email_validator import EmailNotValidError, validate_email

from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANK = {"bounced": 0, "complained": 0, "unsubscribed": 1, "active": 2, "pending": 3}
CHILDREN = ("consents", "deliveries")


def _normal(email: str) -> str:
    """The address as ``subscribers.validation.normalise_email`` makes it today (frozen here);
    an address it would refuse is kept as stored."""
    try:
        info = validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return email
    return f"{info.local_part}@{info.ascii_domain.lower()}"


def _hash(email: str) -> str:
    return hashlib.sha256(email.strip().casefold().encode("utf-8")).hexdigest()


def _merge(conn: sa.Connection, keep: int, drop: int) -> None:
    conn.execute(
        sa.text("UPDATE consents SET subscriber_id = :k WHERE subscriber_id = :d"),
        {"k": keep, "d": drop},
    )
    conn.execute(
        sa.text(
            "UPDATE deliveries SET subscriber_id = :k WHERE subscriber_id = :d AND issue_id "
            "NOT IN (SELECT issue_id FROM deliveries WHERE subscriber_id = :k)"
        ),
        {"k": keep, "d": drop},
    )
    conn.execute(sa.text("DELETE FROM deliveries WHERE subscriber_id = :d"), {"d": drop})
    conn.execute(sa.text("DELETE FROM subscribers WHERE id = :d"), {"d": drop})


def _fill(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text("SELECT id, email, status FROM subscribers ORDER BY id")).all()
    groups: dict[str, list[tuple[int, str, str]]] = {}
    for sid, email, _status in rows:
        normal = _normal(email)
        groups.setdefault(normal.lower(), []).append((sid, email, normal))
        if normal != email:  # an IDN domain, now IDNA-encoded: its suppression entry follows
            old, new = _hash(email), _hash(normal)
            if (
                old != new
                and not conn.execute(
                    sa.text("SELECT 1 FROM suppressions WHERE email_hash = :h"), {"h": new}
                ).first()
            ):
                conn.execute(
                    sa.text("UPDATE suppressions SET email_hash = :n WHERE email_hash = :o"),
                    {"n": new, "o": old},
                )
    status_of = {sid: status for sid, _, status in rows}
    for key, members in groups.items():
        members.sort(key=lambda m: (RANK.get(status_of[m[0]], 4), m[0]))
        keep, _, normal = members[0]
        for sid, _, _ in members[1:]:
            _merge(conn, keep, sid)
        conn.execute(
            sa.text(
                "UPDATE subscribers SET email = :e, email_key = :k, link_key = :l WHERE id = :i"
            ),
            {"e": normal, "k": key, "l": secrets.token_urlsafe(24), "i": keep},
        )


def _keep_children(conn: sa.Connection) -> None:
    """Before a SQLite rebuild of ``subscribers``: its DROP TABLE cascades to these."""
    for table in CHILDREN:
        conn.execute(sa.text(f"CREATE TEMP TABLE _keep_{table} AS SELECT * FROM {table}"))


def _restore_children(conn: sa.Connection) -> None:
    for table in CHILDREN:
        conn.execute(sa.text(f"DELETE FROM {table}"))
        conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM _keep_{table}"))
        conn.execute(sa.text(f"DROP TABLE _keep_{table}"))


def upgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_key", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True)
        )
        batch_op.add_column(
            sa.Column("link_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    _fill(conn)
    if sqlite:
        _keep_children(conn)
    with op.batch_alter_table(
        "subscribers",
        schema=None,
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch_op:
        batch_op.alter_column(
            "email_key",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=254),
            nullable=False,
        )
        batch_op.alter_column(
            "link_key", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )
        batch_op.drop_index("ix_subscribers_email")
        batch_op.create_index("ix_subscribers_email", ["email"], unique=False)
        batch_op.create_index("ix_subscribers_email_key", ["email_key"], unique=True)
    if sqlite:
        _restore_children(conn)

    op.create_table(
        "signup_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("max_papers", sa.Integer(), nullable=True),
        sa.Column("include_summaries", sa.Boolean(), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("form", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nonce"),
    )
    with op.batch_alter_table("signup_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signup_requests_subscriber_id"), ["subscriber_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("signup_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signup_requests_subscriber_id"))
    op.drop_table("signup_requests")
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        _keep_children(conn)
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_index("ix_subscribers_email_key")
        batch_op.drop_index("ix_subscribers_email")
        batch_op.create_index("ix_subscribers_email", ["email"], unique=True)
        batch_op.drop_column("link_key")
        batch_op.drop_column("email_key")
    if sqlite:
        _restore_children(conn)
