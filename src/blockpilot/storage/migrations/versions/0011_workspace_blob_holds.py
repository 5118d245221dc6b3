"""holds on workspace blobs (a replaced blob outlives its readers; orphans can be told apart)

Revision ID: 0011
Revises: 0010

- ``workspace_blob_holds``: who still needs a blob that no file row may name (yet, or any
  more) on the ``database:`` and ``s3://`` backends: an upload under way (``upload``), or a
  reader streaming it (``read``). Each hold expires unless renewed, so a process killed
  mid-way holds nothing for long. A replaced or deleted blob is removed only once no live hold
  names it, so a download that started on a version gets all of it; an unnamed blob that no
  live hold names is an orphan and is swept (docs/workspaces.md).
- ``ix_workspace_files_blob``: finding the file that names a blob, for those checks.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_blob_holds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("blob", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_workspace_blob_holds_blob", "workspace_blob_holds", ["workspace_id", "blob"]
    )
    op.create_index("ix_workspace_blob_holds_expires", "workspace_blob_holds", ["expires_at"])
    op.create_index("ix_workspace_files_blob", "workspace_files", ["workspace_id", "blob"])


def downgrade() -> None:
    op.drop_index("ix_workspace_files_blob", table_name="workspace_files")
    op.drop_table("workspace_blob_holds")
