"""OAuth flows parked until the right user verifies them; setup links that were used

``oauth_pending_flows``: a connect whose tokens came back from the provider but which is not
stored yet. Only the sha256 of the flow id is kept; the tokens are an AES-256-GCM token
(associated data binds the flow hash and the user). Rows expire after 10 minutes.
``setup_link_uses``: the sha256 of each setup link that has stored a credential, so a link
works once (kept until the link itself expires). See docs/oauth.md.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_pending_flows",
        sa.Column("flow_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("flow_hash"),
    )
    with op.batch_alter_table("oauth_pending_flows", schema=None) as batch_op:
        batch_op.create_index("ix_oauth_pending_flows_expires", ["expires_at"], unique=False)
    op.create_table(
        "setup_link_uses",
        sa.Column("link_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("link_hash"),
    )
    with op.batch_alter_table("setup_link_uses", schema=None) as batch_op:
        batch_op.create_index("ix_setup_link_uses_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("setup_link_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_setup_link_uses_expires")
    op.drop_table("setup_link_uses")
    with op.batch_alter_table("oauth_pending_flows", schema=None) as batch_op:
        batch_op.drop_index("ix_oauth_pending_flows_expires")
    op.drop_table("oauth_pending_flows")
