"""policy rules per API key (docs/approvals.md)

Revision ID: 0009
Revises: 0008

- ``policy_rules.api_key_id``: a rule that applies only to calls made with one of the user's
  API keys (NULL: every call of the user). Such a rule narrows what that key may do; it is
  dropped with its key's user, and a revoked key makes no calls, so no foreign key is needed
  to keep it meaningful.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("policy_rules") as batch:
        batch.add_column(sa.Column("api_key_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("policy_rules") as batch:
        batch.drop_column("api_key_id")
