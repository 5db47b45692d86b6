-- The gateway: pinned tool definitions and their pending changes, `ask` approvals, and
-- what discovery last found per server.

CREATE TABLE tool_pins (
    server_id   TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    tool        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    definition  TEXT NOT NULL,
    flags       TEXT NOT NULL,
    pinned_at   BIGINT NOT NULL,
    approved_by TEXT,
    PRIMARY KEY (server_id, tool)
);

CREATE TABLE tool_changes (
    id             TEXT PRIMARY KEY,
    server_id      TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    tool           TEXT NOT NULL,
    old_hash       TEXT,
    new_hash       TEXT NOT NULL,
    old_definition TEXT,
    new_definition TEXT NOT NULL,
    flags          TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    decided_by     TEXT,
    decided_at     BIGINT
);
CREATE UNIQUE INDEX tool_changes_once ON tool_changes (server_id, tool, new_hash);
CREATE INDEX tool_changes_status ON tool_changes (status, id);

CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    owner_id    TEXT NOT NULL,
    server_id   TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    tool        TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    decided_by  TEXT,
    decided_at  BIGINT
);
CREATE INDEX approvals_owner ON approvals (owner_id, status);

ALTER TABLE servers ADD COLUMN discovery TEXT;
