"""block sources (OpenAPI, MCP) stored in the database

Revision ID: 0006
Revises: 0005

- ``block_sources``: one row per imported source of blocks (docs/sources.md). ``name`` is
  the source's provider name and block-name prefix; ``spec_text`` is the description as
  given; ``config`` the parsed, normalised form the blocks are built from; ``updated_at``
  moves on every refresh, so every process rebuilds the source's blocks.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "block_sources",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=2048), nullable=True),
        sa.Column("spec_text", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=True),
        sa.Column("include_tags", sa.JSON(), nullable=False),
        sa.Column("include_operations", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_block_sources_name"),
    )


def downgrade() -> None:
    op.drop_table("block_sources")
