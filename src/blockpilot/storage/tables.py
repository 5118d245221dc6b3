"""The database schema (SQLAlchemy Core); Alembic migrations create it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("type", String(20), nullable=False),
    Column("title", String(200)),
    Column("host", String(300)),
    Column("scopes", JSON, nullable=False),
    Column("expires_at", BigInteger),  # epoch seconds; BigInteger since migration 0003
    Column("is_default", Boolean, nullable=False, default=False),
    Column("needs_reauth", Boolean, nullable=False, default=False),
    # AES-256-GCM token; associated data binds user id + credential id.
    Column("secret", LargeBinary, nullable=False),
    Column("key_id", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    # Fencing token of the last OAuth refresh stored (migration 0003): a refresh holding an
    # older lease than the last writer's is refused, see credentials.manager.
    Column("refresh_fence", BigInteger),
    Index("ix_credentials_user_provider", "user_id", "provider"),
)

chat_sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_chat_sessions_user", "user_id"),
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", name="uq_workspaces_user"),
)

workspace_files = Table(
    "workspace_files",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("path", String(1024), nullable=False),
    Column("blob", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),  # BigInteger since migration 0003
    Column("checksum", String(64), nullable=False),
    Column("mime_type", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("workspace_id", "path", name="uq_workspace_files_path"),
    Index("ix_workspace_files_blob", "workspace_id", "blob"),  # since migration 0011
)

# Migration 0008 (docs/workspaces.md): the bytes of workspace files on the database backend, in
# numbered chunks of at most 1 MiB; a blob is complete before a workspace_files row names it.
workspace_blobs = Table(
    "workspace_blobs",
    metadata,
    Column(
        "workspace_id",
        String(36),
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("blob", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Migration 0011 (docs/workspaces.md): who still needs a blob no file row may name, on the
# database and S3 backends: an upload under way or a reader streaming it ("upload", "read").
# Holds expire unless renewed; an unnamed blob without a live hold is removed.
workspace_blob_holds = Table(
    "workspace_blob_holds",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("blob", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_workspace_blob_holds_blob", "workspace_id", "blob"),
    Index("ix_workspace_blob_holds_expires", "expires_at"),
)

# One row (id 1): the backend that holds the workspace blobs ("file:", "database:", "s3://…").
workspace_storage = Table(
    "workspace_storage",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("backend", String(1024), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(120), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("block_id", String(36), nullable=False),
    Column("block_name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("is_dry_run", Boolean, nullable=False, default=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_ms", Float),
    Column("input_redacted", JSON, nullable=False),
    Column("output_summary", JSON),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("credential_ids", JSON, nullable=False),
    # The process_leases row of the process running it (migration 0003); NULL for rows
    # written before that.
    Column("instance_id", String(64)),
    Index("ix_executions_user_started", "user_id", "started_at"),
    # Only the running rows (migration 0012): the lease sweep and interrupt_own look for
    # nothing else, and a finished record written at once never touches this index (one
    # B-tree page less per commit; docs/performance.md). Queries must say status = 'running'
    # literally for PostgreSQL's generic plans to use it (storage.leases).
    Index(
        "ix_executions_status",
        "status",
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
)

# One row per running blockpilot process (migration 0003), renewed by a heartbeat. A
# ``running`` execution whose process has no live lease here is ``interrupted``.
process_leases = Table(
    "process_leases",
    metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    # boot id, pid namespace, pid and start time: lets a process on the same machine tell
    # at once that this one is gone (see storage.leases).
    Column("process_key", String(255)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("renewed_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_process_leases_expires", "expires_at"),
)

# Pending OAuth2 connects (migration 0002): a row per login, deleted when its callback comes.
oauth_states = Table(
    "oauth_states",
    metadata,
    # sha256 (hex) of the random state sent to the provider; the state itself is never stored.
    Column("state_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    # AES-256-GCM token of the PKCE verifier; associated data binds the state hash and user.
    Column("verifier", LargeBinary, nullable=False),
    Column("context", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_oauth_states_expires", "expires_at"),
)

# OAuth connects waiting for the right user's verification (migration 0005): docs/oauth.md.
oauth_pending_flows = Table(
    "oauth_pending_flows",
    metadata,
    # sha256 (hex) of the random flow id; the id itself is never stored.
    Column("flow_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("account", String(100)),  # the provider account's name, when the provider says
    Column("scopes", JSON, nullable=False),
    # AES-256-GCM token of the credential; associated data binds the flow hash and the user.
    Column("sealed", LargeBinary, nullable=False),
    Column("context", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_oauth_pending_flows_expires", "expires_at"),
)

# Setup links that stored a credential (migration 0005): a link works once.
setup_link_uses = Table(
    "setup_link_uses",
    metadata,
    Column("link_hash", String(64), primary_key=True),  # sha256 (hex) of the token
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", Float, nullable=False),  # the link's own expiry: then the row goes
    Index("ix_setup_link_uses_expires", "expires_at"),
)

# Per-user narrowing of the operator's policy (migration 0007): docs/approvals.md.
policy_rules = Table(
    "policy_rules",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("session_id", String(64)),  # NULL: every session of the user
    Column("selector", String(16), nullable=False),  # effect | block | source | provider | mode
    Column("value", String(200), nullable=False),
    Column("decision", String(8), nullable=False),  # allow | ask | deny | dry_run
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("api_key_id", String(36)),  # migration 0009; NULL: calls made with any key
    Index("ix_policy_rules_user", "user_id"),
)

# Calls that waited for a person's decision (migration 0007): docs/approvals.md.
reviews = Table(
    "reviews",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("block_id", String(36), nullable=False),
    Column("block_name", String(200), nullable=False),
    Column("effect", String(16), nullable=False),
    # sha256 of (user, block, canonical inputs, credential ids): what an approval is bound to.
    Column("digest", String(64), nullable=False),
    Column("input_data", JSON, nullable=False),
    Column("credential_ids", JSON, nullable=False),
    Column("rule", String(300), nullable=False),
    Column("status", String(12), nullable=False),  # pending|approved|rejected|used|expired
    Column("reason", Text),
    Column("decided_by", String(200)),
    Column("decided_at", DateTime(timezone=True)),
    Column("execution_id", String(120)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_reviews_user_digest", "user_id", "digest"),
    Index("ix_reviews_user_created", "user_id", "created_at"),
)

# At-most-once run_block calls (migration 0007): the first call with a key claims it.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("status", String(12), nullable=False),  # running | done
    Column("execution_id", String(120)),
    Column("instance_id", String(64)),  # the process that claimed it (see process_leases)
    Column("response", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)

# Imported sources of blocks (migration 0006, docs/sources.md): an OpenAPI description (or
# another kind) whose operations become blocks. ``updated_at`` changes on every refresh.
block_sources = Table(
    "block_sources",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("location", String(2048)),  # the file path or URL the spec came from
    Column("spec_text", Text, nullable=False),  # the description as given
    Column("config", JSON, nullable=False),  # parsed and normalised: what blocks are built from
    Column("base_url", String(2048)),
    Column("include_tags", JSON, nullable=False),
    Column("include_operations", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", name="uq_block_sources_name"),
)

# The OAuth client of an MCP source with --auth oauth (migration 0010): given by the operator
# or registered dynamically (RFC 7591); the secret is sealed like credentials (docs/sources.md).
source_oauth_clients = Table(
    "source_oauth_clients",
    metadata,
    Column(
        "source_id",
        String(36),
        ForeignKey("block_sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("client_id", String(512), nullable=False),
    Column("sealed_secret", LargeBinary),
    Column("auth_method", String(32), nullable=False),
    Column("redirect_uri", String(2048)),  # what a registered client was registered for
    Column("registered", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
