-- Toolbelt as the OAuth 2.1 authorization server of its own gateway (MCP authorization):
-- registered clients, one-time authorization codes, and token families (one per consent;
-- a refresh token used twice revokes its whole family). Every secret is a digest: a short
-- indexed `lookup` plus the full SHA-256 `hash`, compared in constant time.

CREATE TABLE mcp_clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE mcp_codes (
    id             TEXT PRIMARY KEY,
    lookup         TEXT NOT NULL,
    hash           TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES mcp_clients(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id       TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    resource       TEXT NOT NULL,
    scope          TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX mcp_codes_lookup ON mcp_codes (lookup);

CREATE TABLE mcp_families (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES mcp_clients(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    resource   TEXT NOT NULL,
    scope      TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX mcp_families_agent ON mcp_families (agent_id);

CREATE TABLE mcp_tokens (
    id         TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES mcp_families(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    lookup     TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX mcp_tokens_lookup ON mcp_tokens (lookup);
CREATE INDEX mcp_tokens_family ON mcp_tokens (family_id);
