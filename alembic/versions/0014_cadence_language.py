"""cadence and language per reader; weekly issues (issue 14)

Readers get ``cadence`` (daily/weekly) and ``language`` (NULL: the site's) on the subscribers
table. Issues get ``kind`` (daily/weekly): a weekly e-mail is an issue row of kind "weekly" for
the date of the run that sent it, so its deliveries use the same outbox and the same
(issue, subscriber) uniqueness. The date index stops being unique; (date, kind) is.

Revision ID: 0014
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "subscribers",
        sa.Column("cadence", sa.String(length=16), nullable=False, server_default="daily"),
    )
    op.add_column("subscribers", sa.Column("language", sa.String(length=64), nullable=True))
    op.add_column(
        "issues", sa.Column("kind", sa.String(length=16), nullable=False, server_default="daily")
    )
    op.drop_index("ix_issues_date", table_name="issues")
    op.create_index("ix_issues_date", "issues", ["date"], unique=False)
    op.create_index("uq_issues_date_kind", "issues", ["date", "kind"], unique=True)


def downgrade() -> None:
    op.execute(
        "DELETE FROM deliveries WHERE issue_id IN (SELECT id FROM issues WHERE kind <> 'daily')"
    )
    op.execute("DELETE FROM issues WHERE kind <> 'daily'")
    op.drop_index("uq_issues_date_kind", table_name="issues")
    op.drop_index("ix_issues_date", table_name="issues")
    op.create_index("ix_issues_date", "issues", ["date"], unique=True)
    # A plain DROP COLUMN (SQLite 3.35+ has it): rebuilding these tables in batch mode would
    # drop them, and their ON DELETE CASCADE children (deliveries, consents) with them.
    op.drop_column("issues", "kind")
    op.drop_column("subscribers", "language")
    op.drop_column("subscribers", "cadence")
