"""The schema. Only ``storage/`` knows SQL; migrations live in ``storage/migrations``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from watchkeeper.storage.types import Json, UTCDateTime

metadata = MetaData()

events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime(), nullable=False, index=True),
    Column("source", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("fingerprint", String(256), nullable=False),  # not indexed: see migration 0006
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("service", String(256), nullable=False),
    Column("summary", Text, nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime()),
    Column("labels", Json, nullable=False),
    Column("raw", Json, nullable=False),
)

alerts = Table(
    "alerts", metadata,
    Column("fingerprint", String(256), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("service", String(256), nullable=False, index=True),
    Column("resource", String(256), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("labels", Json, nullable=False),
    Column("summary", Text, nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("count", Integer, nullable=False),
    Column("resolved_at", UTCDateTime()),
    Column("incident_id", Integer, index=True),
    Column("join_reason", String(32)),
    Column("held", String(32)),
    Column("changes", Json),
)

incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("title", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("severity", String(16), nullable=False),
    Column("services", Json, nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False, index=True),
    Column("last_activity_at", UTCDateTime(), nullable=False),
    Column("acknowledged_at", UTCDateTime()),
    Column("mitigated_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    Column("firing_count", Integer, nullable=False),
    Column("alert_count", Integer, nullable=False),
    Column("assignee", String(256)),
    # migration 0010: the source's start of the first alert; lifecycle times a reopen keeps
    Column("started_at", UTCDateTime()),
    Column("first_acknowledged_at", UTCDateTime()),
    Column("first_mitigated_at", UTCDateTime()),
)

incident_services = Table(
    "incident_services", metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("service", String(256), primary_key=True),
    Index("ix_incident_services_service", "service"),
)

incident_keys = Table(
    "incident_keys", metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("key", String(512), primary_key=True),
    Index("ix_incident_keys_key", "key"),
)

incident_alerts = Table(
    "incident_alerts", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("fingerprint", String(256), nullable=False),
    Column("joined_at", UTCDateTime(), nullable=False, index=True),
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject", String(300), nullable=False, index=True),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("expires_at", UTCDateTime()),  # migration 0010; NULL: never (ingest tokens only)
    Column("last_used_at", UTCDateTime()),
)

dead_letters = Table(
    "dead_letters", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime(), nullable=False, index=True),
    Column("source", String(64), nullable=False),
    Column("content_type", String(256)),
    Column("status", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("truncated", Boolean, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

inhibitors = Table(
    "inhibitors", metadata,
    Column("key", String(600), primary_key=True),
    Column("fingerprint", String(256), primary_key=True),
)

silences = Table(
    "silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", Json, nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False, index=True),
    Column("created_by", String(256), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# -- governance (migration 0002) ---------------------------------------------------------------
incident_causes = Table(
    "incident_causes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("rank", Integer, nullable=False),
    Column("component", String(256), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("score", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("model", String(128), nullable=False),
    Column("evidence", Json, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

decisions = Table(
    "decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("runbook_id", String(64), nullable=False, index=True),
    Column("runbook_version", String(32), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("confidence", Float),
    Column("threshold", Float, nullable=False),
    Column("params", Json, nullable=False),
    Column("inputs", Json, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("outcome", String(32)),
    Column("scored_at", UTCDateTime()),
)

approvals = Table(
    "approvals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", Integer, ForeignKey("decisions.id")),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("runbook_id", String(64), nullable=False),
    Column("risk", String(16), nullable=False),
    Column("params", Json, nullable=False),
    Column("requested_by", String(256), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("required", Integer, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("decided_at", UTCDateTime()),
)

approval_votes = Table(
    "approval_votes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("approval_id", Integer, ForeignKey("approvals.id"), nullable=False, index=True),
    Column("actor", String(256), nullable=False),
    Column("approve", Boolean, nullable=False),
    Column("comment", Text, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

action_runs = Table(
    "action_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", Integer, ForeignKey("decisions.id")),
    Column("approval_id", Integer, ForeignKey("approvals.id")),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("runbook_id", String(64), nullable=False, index=True),
    Column("service", String(256), nullable=False, index=True),
    Column("trigger", String(16), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("status", String(24), nullable=False, index=True),
    Column("verification", String(16)),
    Column("params", Json, nullable=False),
    Column("result", Json),
    Column("queued_at", UTCDateTime(), nullable=False, index=True),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("lease_owner", String(128)),  # migration 0009: the worker that runs it ...
    Column("lease_expires_at", UTCDateTime()),  # ... until then, unless its heartbeat renews it
)

runbook_state = Table(
    "runbook_state", metadata,
    Column("runbook_id", String(64), primary_key=True),
    Column("consecutive_failures", Integer, nullable=False),
    Column("breaker_open", Boolean, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

cursors = Table(
    "cursors", metadata,
    Column("name", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

detector_state = Table(
    "detector_state", metadata,
    Column("key", String(1024), primary_key=True),  # the watch name and the series' sorted labels
    Column("watch", String(64), nullable=False, index=True),
    Column("state", Json, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# -- changes and ground truth for root-cause ranking (migration 0011) -------------------------
changes = Table(
    "changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("version", String(256)),
    Column("at", UTCDateTime(), nullable=False),
    Column("who", String(256), nullable=False),
    Column("link", Text),
    Column("description", Text, nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(256), nullable=False),
    Index("ix_changes_service_at", "service", "at"),
    Index("ix_changes_at", "at"),
)

incident_truth = Table(
    "incident_truth", metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("component", String(256), nullable=False),
    Column("recorded_by", String(256), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
)

# -- the console (migration 0012) -------------------------------------------------------------
console_users = Table(
    "console_users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256)),  # NULL: signs in only through the trusted SSO header
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime()),
    Column("last_login_at", UTCDateTime()),
)

console_sessions = Table(
    "console_sessions", metadata,
    Column("id", String(64), primary_key=True),  # sha256 of the cookie's secret, never the secret
    Column("user_id", Integer, ForeignKey("console_users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("via", String(16), nullable=False),  # password | sso
)

console_link_nonces = Table(
    "console_link_nonces", metadata,
    Column("nonce", String(64), primary_key=True),
    Column("approval_id", Integer, nullable=False),
    Column("used_at", UTCDateTime(), nullable=False),
    Column("used_by", String(256), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

console_secrets = Table(
    "console_secrets", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# -- ITSM links, sync cursors and inbound idempotency keys (migration 0014) -------------------
itsm_links = Table(
    "itsm_links", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("system", String(32), nullable=False),  # servicenow | jira
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("external_id", String(128), nullable=False),  # ServiceNow sys_id, Jira issue id
    Column("external_key", String(128), nullable=False),  # INC0010001, OPS-12: what people read
    Column("url", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ux_itsm_links_incident", "system", "incident_id", unique=True),
    Index("ux_itsm_links_external", "system", "external_id", unique=True),
)

itsm_cursors = Table(
    "itsm_cursors", metadata,
    Column("system", String(32), primary_key=True),
    Column("at", UTCDateTime(), nullable=False),  # e.g. the newest sys_updated_on polled
    Column("updated_at", UTCDateTime(), nullable=False),
)

itsm_inbound = Table(
    "itsm_inbound", metadata,
    Column("system", String(32), primary_key=True),
    Column("key", String(256), primary_key=True),  # what makes a change from there unique
    Column("received_at", UTCDateTime(), nullable=False, index=True),
    Column("incident_id", Integer),
    Column("outcome", String(32), nullable=False),
)

# -- integration outbox (migration 0013) ------------------------------------------------------
outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("incident_id", Integer, nullable=False),
    Column("target", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("audit_seq", BigInteger, nullable=False),  # the audit record of the change that caused it
    Column("payload", Json, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Column("last_error", Text),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UTCDateTime()),
    Index("ix_outbox_status_id", "status", "id"),
    Index("ix_outbox_group", "incident_id", "target", "status", "id"),
)

integration_refs = Table(
    "integration_refs", metadata,
    Column("target", String(64), primary_key=True),
    Column("incident_id", Integer, primary_key=True),
    Column("ref", Json, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# -- value: use cases, stage gates, model registry, drift (migration 0015) --------------------
use_cases = Table(
    "use_cases", metadata,
    Column("id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("doc", Json, nullable=False),  # the use case as applied (UseCase, JSON)
    Column("stage_since", UTCDateTime(), nullable=False),
    Column("pilot_started_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(256), nullable=False),
)

use_case_versions = Table(
    "use_case_versions", metadata,
    Column("use_case_id", String(64), ForeignKey("use_cases.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("doc", Json, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False),
)

gate_proposals = Table(
    "gate_proposals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("use_case_id", String(64), ForeignKey("use_cases.id"), nullable=False, index=True),
    Column("use_case_version", Integer, nullable=False),
    Column("from_stage", String(16), nullable=False),
    Column("to_stage", String(16), nullable=False),
    Column("reason", String(48), nullable=False),
    Column("evaluation", Json, nullable=False),
    Column("proposed_by", String(256), nullable=False),
    Column("proposed_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("decided_by", String(256)),
    Column("decided_at", UTCDateTime()),
    Column("comment", Text, nullable=False),
)

models = Table(
    "models", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", String(64), nullable=False),
    Column("params", Json, nullable=False),
    Column("train_start", UTCDateTime()),
    Column("train_end", UTCDateTime()),
    Column("scores", Json, nullable=False),
    Column("baseline", Json, nullable=False),  # reference score distribution for drift
    Column("registered_at", UTCDateTime(), nullable=False),
    Column("registered_by", String(256), nullable=False),
    Index("ux_models_kind_name_version", "kind", "name", "version", unique=True),
)

drift_events = Table(
    "drift_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False, index=True),  # kind:name
    Column("version", String(64), nullable=False),
    Column("signal", String(32), nullable=False),
    Column("psi", Float),
    Column("ks", Float),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("details", Json, nullable=False),
)

# migration 0017: traces — raw spans for a window (times in unix seconds, as spans carry them), and
# the RED rows (per step, per service / edge / operation) kept longer
spans = Table(
    "spans", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("received_s", Float, nullable=False, index=True),
    Column("trace_id", String(32), nullable=False, index=True),
    Column("span_id", String(16), nullable=False),
    Column("parent_id", String(16)),
    Column("service", String(256), nullable=False),
    Column("operation", String(256), nullable=False),
    Column("start_s", Float, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("error", Boolean, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("size", Integer, nullable=False),  # bytes the row holds, roughly: what the size cap counts
    Index("ix_spans_service_start", "service", "start_s"),
)

trace_red = Table(
    "trace_red", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),  # the step's end, unix seconds
    Column("step", Float, nullable=False),
    Column("scope", String(16), nullable=False),  # service | edge | operation
    Column("name", String(520), nullable=False),  # the service, "caller->callee" or "service:operation"
    Column("service", String(256), nullable=False),  # whom the row is about (an edge's callee)
    Column("count", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("p50", Float),
    Column("p95", Float),
    Column("p99", Float),
    Column("extra", Json),  # self_p50/p95 (a service) or net_p50/p95 (an edge)
    Index("ix_trace_red_scope_name_at", "scope", "name", "at"),
    Index("ix_trace_red_service_at", "service", "at"),
)

# -- logs (migration 0016; docs/logs.md) ---------------------------------------------------------
log_templates = Table(
    "log_templates", metadata,
    Column("service", String(256), primary_key=True),
    Column("template_id", String(64), primary_key=True),
    Column("template", Text, nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False, index=True),
    Column("count", BigInteger, nullable=False),
)

log_counts = Table(
    "log_counts", metadata,  # per-minute lines per template (the summary the ranker reads)
    Column("service", String(256), primary_key=True),
    Column("template_id", String(64), primary_key=True),
    Column("minute", UTCDateTime(), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Index("ix_log_counts_minute", "minute"),
)

log_lines = Table(
    "log_lines", metadata,  # raw lines, kept for logs.retention (window and size cap)
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime(), nullable=False, index=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("service", String(256), nullable=False),
    Column("template_id", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("input", String(1024), nullable=False),
    Column("line", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Index("ix_log_lines_service_at", "service", "at"),
)

log_offsets = Table(
    "log_offsets", metadata,  # where each followed file stands (written with its lines)
    Column("input", String(1024), primary_key=True),
    Column("inode", BigInteger, nullable=False),
    Column("device", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("lines", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

log_state = Table(
    "log_state", metadata,  # the miners' and the anomaly baselines' state, JSON
    Column("name", String(300), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("state", Json, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

bus_processed = Table(  # the bus: message ids committed by a worker (idempotency; docs/scaling.md)
    "bus_processed", metadata,
    Column("message_id", String(80), primary_key=True),
    Column("partition", Integer, nullable=False),
    Column("events", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False, index=True),
)
