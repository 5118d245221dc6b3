"""OAuth clients of MCP sources (the app blockpilot signs in with at their authorization servers)

Revision ID: 0010
Revises: 0009

- ``source_oauth_clients``: one row per source with ``--auth oauth``: the client id the
  operator gave (``--client-id``) or the authorization server issued by dynamic client
  registration (RFC 7591), its secret sealed like credentials (AES-256-GCM, associated data
  binds the source id), how it authenticates at the token endpoint, and the redirect URI it
  was registered for. Removed with its source (docs/sources.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_oauth_clients",
        sa.Column("source_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=512), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=True),
        sa.Column("auth_method", sa.String(length=32), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=True),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["block_sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("source_id"),
    )


def downgrade() -> None:
    op.drop_table("source_oauth_clients")
