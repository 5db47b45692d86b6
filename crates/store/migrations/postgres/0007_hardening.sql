-- Login throttling shared by every replica, and leases for work one replica does at a time.
-- Keep in step with ../sqlite/0007_hardening.sql.

-- One row per throttled key (`addr:<client address>`, `acct:<digest of an email>`): see
-- toolbelt_model::throttle. Rows left alone past the policy's `forget` time are deleted.
CREATE TABLE login_throttle (
    key           TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX login_throttle_updated ON login_throttle (updated_at);

-- A named lease (`audit.checkpoint`): held by `owner` until `until` (ms), renewed by it.
CREATE TABLE leases (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until BIGINT NOT NULL
);

-- TRUNCATE skips row triggers: refuse it too. (The serving role is also denied UPDATE,
-- DELETE and TRUNCATE on audit_events when migrations run as a separate owner role.)
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
