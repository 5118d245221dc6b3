"""executions: the status index holds the running rows only

Revision ID: 0012
Revises: 0011

``ix_executions_status`` becomes partial (``WHERE status = 'running'``). The two queries that
use it, the lease sweep and ``interrupt_own`` (storage.leases), look for ``running`` rows
only; a finished record written in one INSERT, most of them, no longer adds an entry to it,
and a finished run's UPDATE only removes one: one B-tree page less in each of those commits
(docs/performance.md, round six).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.drop_index("ix_executions_status", table_name="executions")
    op.create_index(
        "ix_executions_status",
        "executions",
        ["status"],
        sqlite_where=_RUNNING,
        postgresql_where=_RUNNING,
    )


def downgrade() -> None:
    op.drop_index("ix_executions_status", table_name="executions")
    op.create_index("ix_executions_status", "executions", ["status"])
