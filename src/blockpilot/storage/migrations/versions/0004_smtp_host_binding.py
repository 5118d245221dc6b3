"""SMTP credentials bound to their server (hardening)

Revision ID: 0004
Revises: 0003

An ``smtp`` username/password credential now names its server in ``credentials.host``
(``host`` or ``host:port``) and is sent to that server only. Rows stored before carry no
host: they are marked ``needs_reauth`` here, so they match no block until the person
confirms the host (``blockpilot credentials set-host`` or ``PATCH /api/v1/credentials/{id}``,
which stores the host and clears the mark). No schema change: the column exists since 0001.
Matching refuses a host-less SMTP row even without the mark (docs/security.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE credentials SET needs_reauth = :yes "
            "WHERE provider = 'smtp' AND type = 'user_password' AND host IS NULL"
        ).bindparams(yes=True)
    )


def downgrade() -> None:
    # The marks stay: clearing them would make unconfirmed credentials usable anywhere again.
    pass
