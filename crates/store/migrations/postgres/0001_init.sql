-- Toolbelt schema, PostgreSQL flavour. Times are milliseconds since the epoch (BIGINT);
-- booleans are 0/1 BIGINTs; JSON is TEXT. Keep in step with ../sqlite/0001_init.sql.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE toolboxes (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    owner_id          TEXT REFERENCES users(id) ON DELETE CASCADE, -- NULL: shared
    kind              TEXT,
    status            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_heartbeat_at BIGINT
);
CREATE UNIQUE INDEX toolboxes_owner_name ON toolboxes (COALESCE(owner_id, ''), name);

CREATE TABLE catalog_entries (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE servers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    toolbox_id    TEXT NOT NULL REFERENCES toolboxes(id),
    catalog_id    TEXT NOT NULL REFERENCES catalog_entries(id),
    owner_id      TEXT REFERENCES users(id) ON DELETE CASCADE, -- NULL: shared
    config        TEXT NOT NULL,
    secrets       TEXT NOT NULL,
    desired       TEXT NOT NULL,
    status        TEXT NOT NULL,
    last_error    TEXT,
    restart_count BIGINT NOT NULL DEFAULT 0,
    generation    BIGINT NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX servers_toolbox_name ON servers (toolbox_id, name) WHERE desired <> 'deleted';
CREATE INDEX servers_catalog ON servers (catalog_id);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    lookup       TEXT NOT NULL,
    hash         TEXT NOT NULL,
    user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    agent_id     TEXT REFERENCES agents(id) ON DELETE CASCADE,
    toolbox_id   TEXT REFERENCES toolboxes(id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX tokens_lookup ON tokens (lookup);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_agent ON tokens (agent_id);

CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    toolbox_id TEXT REFERENCES toolboxes(id) ON DELETE CASCADE,
    server_id  TEXT REFERENCES servers(id) ON DELETE CASCADE,
    tool       TEXT,
    rule       TEXT NOT NULL,
    active     BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX grants_target ON grants
    (agent_id, kind, COALESCE(toolbox_id, ''), COALESCE(server_id, ''), COALESCE(tool, ''));

-- Append-only, hash-chained. The head lives in its own table so that deleting the newest
-- events is detected.
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    ts          BIGINT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    owner_id    TEXT,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_owner ON audit_events (owner_id, seq);
CREATE INDEX audit_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_action ON audit_events (action, seq);
CREATE INDEX audit_ts ON audit_events (ts);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
