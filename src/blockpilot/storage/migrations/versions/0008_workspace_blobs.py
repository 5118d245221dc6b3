"""workspace blobs in the database (workspace files readable from every server)

Revision ID: 0008
Revises: 0007

- ``workspace_blobs``: the bytes of workspace files when ``BLOCKPILOT_WORKSPACE_URL`` is
  ``database:`` (the default on PostgreSQL), in numbered chunks of at most 1 MiB. A blob's
  chunks are written before the ``workspace_files`` row names it, so a reader never sees part
  of one (docs/workspaces.md).
- ``workspace_storage``: which backend holds the blobs, recorded on first use and by
  ``blockpilot workspaces migrate``, so a server configured for another backend refuses to
  start instead of reporting every file missing. An installation that already has files kept
  them in the local folder: that is recorded here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_blobs",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("blob", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "blob", "seq"),
    )
    op.create_table(
        "workspace_storage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(length=1024), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Files written before this revision are in the local folder (the only backend then).
    op.execute(
        "INSERT INTO workspace_storage (id, backend, updated_at) "
        "SELECT 1, 'file:', CURRENT_TIMESTAMP WHERE EXISTS (SELECT 1 FROM workspace_files)"
    )


def downgrade() -> None:
    op.drop_table("workspace_storage")
    op.drop_table("workspace_blobs")
