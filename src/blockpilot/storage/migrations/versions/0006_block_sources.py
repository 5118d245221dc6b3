"""block sources (OpenAPI, MCP) stored in the database

Revision ID: 0006
Revises: 0005

Reserved: no schema change yet (filled in by the work it is named after).
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
