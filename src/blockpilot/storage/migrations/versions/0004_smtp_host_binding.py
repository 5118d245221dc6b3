"""SMTP credentials bound to their server (hardening)

Revision ID: 0004
Revises: 0003

Reserved: no schema change yet (filled in by the work it is named after).
"""

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
