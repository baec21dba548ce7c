"""Tables. Every change goes through an Alembic migration in `migrations/versions`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false, true

# Explicit constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


def _tz() -> DateTime:
    return DateTime(timezone=True)


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(32), default="standard")
    # Enterprise organizations' custom limits (DESIGN §5); other plans use the plan's.
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    rate_limit_per_day: Mapped[int | None] = mapped_column(Integer)
    rate_limit_scope: Mapped[str] = mapped_column(String(16), default="key", server_default="key")
    # Bumped on every membership or role change; with Redis, instances compare it on each
    # request to drop stale cached permissions at once.
    access_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # What a leak report (GitHub secret scanning) does to a reported key: revoke or flag.
    leak_policy: Mapped[str] = mapped_column(String(8), default="revoke", server_default="revoke")
    created_at: Mapped[datetime] = mapped_column(_tz())


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(_tz())


class OrgMember(Base):
    __tablename__ = "org_members"
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(64))
    # A reseller's client (issue 12): reaches only the projects assigned to them, whatever
    # their roles say; see ClientAssignment and repositories.project_access.
    client: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(_tz())


class CustomRole(Base):
    """A named set of project permissions an organization defines for its projects."""

    __tablename__ = "custom_roles"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    permissions: Mapped[list[str]] = mapped_column(JSON)


class CustomPermission(Base):
    """A permission of the organization's own API, registered for one project (issue 10)."""

    __tablename__ = "custom_permissions"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(200), default="")
    implies: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(_tz())
    created_by: Mapped[int | None] = mapped_column(BigInteger)


class ProjectMember(Base):
    """One row per (user, project, role): a user may hold several roles on a project."""

    __tablename__ = "project_members"
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(64), primary_key=True)


_LIVE_EXPIRING = text("expires_at IS NOT NULL AND revoked_at IS NULL")


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_project_active", "project_id", "revoked_at"),
        # Expiry reminders look for live keys expiring soon every few minutes: without it, a
        # scan of the whole table each time (441 MB at 1,000,000 keys).
        Index(
            "ix_api_keys_expiring",
            "expires_at",
            postgresql_where=_LIVE_EXPIRING,
            sqlite_where=_LIVE_EXPIRING,
        ),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(8))
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    lookup: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    secret_version: Mapped[int] = mapped_column(Integer)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    hint: Mapped[str] = mapped_column(String(8))
    permissions: Mapped[list[str]] = mapped_column(JSON)
    ip_allowlist: Mapped[list[str]] = mapped_column(JSON, default=list)
    rate_limit: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(_tz())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(_tz())
    last_used_at: Mapped[datetime | None] = mapped_column(_tz())
    expires_at: Mapped[datetime | None] = mapped_column(_tz())
    # A future revoked_at is a rotation grace period: the key works until then.
    revoked_at: Mapped[datetime | None] = mapped_column(_tz())
    rotated_from: Mapped[str | None] = mapped_column(String(40))
    label: Mapped[str | None] = mapped_column(String(16))  # sets the rotation schedule
    # Days ahead of expiry of the last reminder sent (7, then 1), so each goes out once.
    expiry_notice: Mapped[int | None] = mapped_column(Integer)
    # Bumped on every change; with Redis, instances compare it on each request (DESIGN §5).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Test keys only: may be sent from a web page (an Origin header); see issue 11.
    allow_browser: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ChangeEvent(Base):
    """The change feed every process polls to drop stale cache entries (DESIGN §8: a change
    made by the CLI is enforced within a second). `scope` is 'key' (ref = key id), 'user'
    (ref = user id: memberships or roles changed) or 'org' (ref = org id: custom roles)."""

    __tablename__ = "change_events"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(8))
    ref: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(_tz())


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_project_time", "project_id", "created_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_key_id: Mapped[str | None] = mapped_column(String(40))
    key_id: Mapped[str | None] = mapped_column(String(40), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Indexed for housekeeping's retention (KEYPLANE_AUDIT_RETENTION_DAYS).
    created_at: Mapped[datetime] = mapped_column(_tz(), index=True)


class Session(Base):
    """A dashboard sign-in. Only a hash of the cookie token is stored."""

    __tablename__ = "sessions"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_tz())
    expires_at: Mapped[datetime] = mapped_column(_tz())
    password_verified_at: Mapped[datetime] = mapped_column(_tz())


class LoginThrottle(Base):
    """Failed dashboard sign-ins per subject: an email address (known or not, so that the
    lockout says nothing about which accounts exist), or "device:<nonce>" for a browser with
    a device cookie (services.login_throttle). Shared by every instance through the database.
    The column kept its first name, `email`."""

    __tablename__ = "login_throttles"
    subject: Mapped[str] = mapped_column("email", String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(_tz())
    locked_until: Mapped[datetime | None] = mapped_column(_tz())


class Invitation(Base):
    """A pending membership: an email invited to an organization (and optionally a project)
    with a role, until the person with that email accepts it in the dashboard."""

    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("org_id", "email"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), index=True)
    org_role: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    project_role: Mapped[str | None] = mapped_column(String(64))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(_tz())


# --- platform data ---------------------------------------------------------------------------
class EndUser(Base):
    __tablename__ = "end_users"
    __table_args__ = (UniqueConstraint("project_id", "mode", "external_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    external_id: Mapped[str] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    locale: Mapped[str | None] = mapped_column(String(35))
    external_attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(_tz())
    updated_at: Mapped[datetime] = mapped_column(_tz())


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_scope", "project_id", "mode", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    end_user_id: Mapped[int] = mapped_column(
        ForeignKey("end_users.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="unresolved")
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(_tz())
    updated_at: Mapped[datetime] = mapped_column(_tz())


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_tz())


class KeyUsageHourly(Base):
    """Requests per key, hour, status class and permission; written in batches (issue 7)."""

    __tablename__ = "key_usage_hourly"
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Indexed on its own: anomaly detection reads the current hour of every key, and
    # housekeeping deletes hours past retention (the primary key leads with key_id).
    hour: Mapped[datetime] = mapped_column(_tz(), primary_key=True, index=True)
    status_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    permission: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class KeyClient(Base):
    """Who calls with a key: one row per key and client address, updated in batches. After a
    rotation it tells how many systems still use the old secret (issue 7)."""

    __tablename__ = "key_clients"
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    first_seen: Mapped[datetime] = mapped_column(_tz())
    last_seen: Mapped[datetime] = mapped_column(_tz(), index=True)  # for retention
    count: Mapped[int] = mapped_column(BigInteger)


class Label(Base):
    """A project's conversation label. `key` is the case-folded name, so that "Billing" and
    "billing" are one label; `name` keeps the spelling it was first created with."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("project_id", "mode", "key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(_tz())
    updated_at: Mapped[datetime] = mapped_column(_tz())


class DataProvider(Base):
    """A source of knowledge snippets (a directory or a URL list) and its last sync's outcome."""

    __tablename__ = "data_providers"
    __table_args__ = (Index("ix_data_providers_scope", "project_id", "mode", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # idle (never synced), pending, running, succeeded, failed
    status: Mapped[str] = mapped_column(String(16), default="idle")
    snippets_created: Mapped[int] = mapped_column(Integer, default=0)
    snippets_updated: Mapped[int] = mapped_column(Integer, default=0)
    snippets_removed: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime | None] = mapped_column(_tz())
    started_at: Mapped[datetime | None] = mapped_column(_tz())
    finished_at: Mapped[datetime | None] = mapped_column(_tz())
    created_at: Mapped[datetime] = mapped_column(_tz())
    updated_at: Mapped[datetime] = mapped_column(_tz())


class Snippet(Base):
    """A piece of knowledge `generate` answers from. Full-text indexed: an FTS5 table kept in
    sync by triggers on SQLite, an expression GIN index on PostgreSQL (see migration 0007;
    neither is declared here because they differ per database)."""

    __tablename__ = "snippets"
    __table_args__ = (
        Index("ix_snippets_scope", "project_id", "mode", "id"),
        # One snippet per source (file path or URL) of a provider: what makes syncs idempotent.
        UniqueConstraint("provider_id", "source"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(300))
    content: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_providers.id", ondelete="CASCADE")
    )
    source: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(_tz())
    updated_at: Mapped[datetime] = mapped_column(_tz())


# --- platform data: tables, files, deployments (issue 5, part B) ----------------------------
class DataTable(Base):
    """A project's structured data table; `columns` is `[{"name", "type"}]`, type one of
    text, number, boolean, date. Rows are checked against it on every write."""

    __tablename__ = "data_tables"
    __table_args__ = (UniqueConstraint("project_id", "mode", "name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(_tz())


class TableRow(Base):
    __tablename__ = "table_rows"
    __table_args__ = (Index("ix_table_rows_table", "table_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("data_tables.id", ondelete="CASCADE"))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(_tz())
    updated_at: Mapped[datetime] = mapped_column(_tz())


class StoredFile(Base):
    """An uploaded file's metadata; the bytes live in a blob store under `storage_key`
    (content-addressed: the sha256), so identical uploads share one blob."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_scope", "project_id", "mode", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(_tz())


class Deployment(Base):
    """Where the agent is deployed: a channel (web, slack, whatsapp, api) with its config."""

    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_scope", "project_id", "mode", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(_tz())
    updated_at: Mapped[datetime] = mapped_column(_tz())


class Alert(Base):
    """A security signal about a key (or an address): anomalies, failed-auth bursts, leaks.
    `dedup` makes the same alert for the same key, kind and window exist once, however many
    processes detect it."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_project_id", "project_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    key_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedup: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(_tz())
    acknowledged_at: Mapped[datetime | None] = mapped_column(_tz())
    acknowledged_by: Mapped[int | None] = mapped_column(BigInteger)


class WebhookEndpoint(Base):
    """Where a project's alerts and expiry reminders are POSTed, signed with its own secret
    (sealed like key secrets, so that the sender can sign)."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret_version: Mapped[int] = mapped_column(Integer)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(_tz())
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    # Issue 11: a subscription receives the events of one mode only, like the keys.
    mode: Mapped[str] = mapped_column(String(8), default="live", server_default="live")
    description: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime | None] = mapped_column(_tz())
    # When a delivery last succeeded (the PII inventory's "last used"): deliveries themselves
    # are deleted after their retention.
    last_delivered_at: Mapped[datetime | None] = mapped_column(_tz())
    # Set when deliveries kept failing for the whole retry window; nothing is queued or sent
    # until someone enables it again (PATCH {"enabled": true}).
    disabled_at: Mapped[datetime | None] = mapped_column(_tz())
    disabled_reason: Mapped[str | None] = mapped_column(String(500))


class WebhookDelivery(Base):
    """The outbox: one row per event and endpoint. Senders claim a due row with a conditional
    update on `attempts`, so several processes never send the same attempt twice, and a
    restart loses nothing: the row says what is left to do and when."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(_tz())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(_tz(), index=True)  # for retention
    delivered_at: Mapped[datetime | None] = mapped_column(_tz())
    # A replay is a new delivery of the same body; it names the one it repeats.
    replay_of: Mapped[int | None] = mapped_column(BigInteger)


class ClientAssignment(Base):
    """A project (chatbot) an organization admin assigned to a client member (issue 12).
    A client reaches exactly these projects, checked on every request."""

    __tablename__ = "client_assignments"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(_tz())
    created_by: Mapped[int | None] = mapped_column(BigInteger)


class OrgSso(Base):
    """An organization's OpenID Connect sign-in (issue 12). The client secret is stored
    sealed with the keyring, bound to the organization id."""

    __tablename__ = "org_sso"
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    secret_version: Mapped[int] = mapped_column(Integer)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    allowed_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Members created on first SSO sign-in are clients (confined) unless switched off.
    jit_clients: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    default_project_role: Mapped[str] = mapped_column(String(64), default="p_member")
    password_login: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(_tz())


class OrgBranding(Base):
    """White-label basics shown on the organization's login and dashboard pages."""

    __tablename__ = "org_branding"
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    product_name: Mapped[str | None] = mapped_column(String(100))
    logo_url: Mapped[str | None] = mapped_column(String(2000))
    color: Mapped[str | None] = mapped_column(String(7))
    base_url: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(_tz())


class OidcLogin(Base):
    """A sign-in on its way through the identity provider: the state (hashed), the nonce and
    the PKCE verifier, for ten minutes at most."""

    __tablename__ = "oidc_logins"
    state_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(1000))
    expires_at: Mapped[datetime] = mapped_column(_tz())


class JobRun(Base):
    """When a deployment-wide job (anomaly detection, expiry reminders, housekeeping) last
    started. Every process ticks, and the one whose conditional update succeeds runs it, so
    a job runs once per interval however many processes there are."""

    __tablename__ = "job_runs"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(_tz())
