"""policies, reviews and idempotency keys

Revision ID: 0007
Revises: 0006

Reserved: no schema change yet (filled in by the work it is named after).
"""

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
