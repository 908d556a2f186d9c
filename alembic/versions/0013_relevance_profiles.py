"""personal relevance: reader profiles, example papers, cached paper vectors

Revision ID: 0013
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0013"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscriber_profiles",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("interests", sa.Text(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("vector_model", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id"),
    )
    op.create_table(
        "subscriber_examples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("arxiv_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sign", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["arxiv_id"], ["papers.arxiv_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "arxiv_id"),
    )
    op.create_index(
        "ix_subscriber_examples_subscriber_id",
        "subscriber_examples",
        ["subscriber_id"],
        unique=False,
    )
    op.create_table(
        "paper_vectors",
        sa.Column("arxiv_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("arxiv_id", "model"),
    )


def downgrade() -> None:
    op.drop_table("paper_vectors")
    op.drop_index("ix_subscriber_examples_subscriber_id", table_name="subscriber_examples")
    op.drop_table("subscriber_examples")
    op.drop_table("subscriber_profiles")
