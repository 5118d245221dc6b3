"""OAuth flows parked until the right user verifies them (hardening)

Revision ID: 0005
Revises: 0004

Reserved: no schema change yet (filled in by the work it is named after).
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
