"""process leases: which process runs an execution; refresh fencing; 64-bit integers

Revision ID: 0003
Revises: 0002

- ``process_leases``: one row per running blockpilot process, renewed by a heartbeat; a
  ``running`` execution is only marked ``interrupted`` once its process's lease is gone.
- ``executions.instance_id``: the process running the execution.
- ``credentials.refresh_fence``: fencing token of the last stored OAuth refresh.
- ``credentials.expires_at`` and ``workspace_files.size_bytes`` become 64-bit on PostgreSQL
  (SQLite's INTEGER is 64-bit already, so nothing is rebuilt there).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_leases",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("process_key", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance_id"),
    )
    op.create_index("ix_process_leases_expires", "process_leases", ["expires_at"], unique=False)
    op.add_column("executions", sa.Column("instance_id", sa.String(length=64), nullable=True))
    op.add_column("credentials", sa.Column("refresh_fence", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("credentials", "expires_at", type_=sa.BigInteger(), existing_nullable=True)
        op.alter_column(
            "workspace_files", "size_bytes", type_=sa.BigInteger(), existing_nullable=False
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "workspace_files", "size_bytes", type_=sa.Integer(), existing_nullable=False
        )
        op.alter_column("credentials", "expires_at", type_=sa.Integer(), existing_nullable=True)
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.drop_column("refresh_fence")
    with op.batch_alter_table("executions") as batch_op:
        batch_op.drop_column("instance_id")
    op.drop_index("ix_process_leases_expires", table_name="process_leases")
    op.drop_table("process_leases")
