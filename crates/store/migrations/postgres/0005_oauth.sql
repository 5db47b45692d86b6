-- OAuth: providers an admin configured, flows in progress, and users' connections. Token
-- values are never here: a connection names the vault secret that holds them sealed.
-- Keep in step with ../sqlite/0005_oauth.sql.

CREATE TABLE oauth_providers (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    kind                   TEXT NOT NULL,
    issuer                 TEXT,
    authorization_endpoint TEXT NOT NULL,
    token_endpoint         TEXT NOT NULL,
    revocation_endpoint    TEXT,
    client_id              TEXT NOT NULL,
    client_secret_id       TEXT REFERENCES secrets(id) ON DELETE SET NULL,
    default_scopes         TEXT NOT NULL, -- JSON array
    created_at             BIGINT NOT NULL
);

-- An authorization-code flow between its start and its callback. `state` is kept only as a
-- digest; the PKCE verifier is useless without the code, which only the callback carries,
-- and the row is deleted by the callback or when it expires.
CREATE TABLE oauth_flows (
    id             TEXT PRIMARY KEY,
    state_digest   TEXT NOT NULL UNIQUE,
    owner_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider_id    TEXT NOT NULL REFERENCES oauth_providers(id) ON DELETE CASCADE,
    session_digest TEXT,           -- the dashboard session it is bound to (NULL: not yet)
    scopes         TEXT NOT NULL,  -- JSON array
    verifier       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    login_hint     TEXT,
    connection_id  TEXT,           -- set once the callback completed it
    error          TEXT,           -- set when the callback failed
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX oauth_flows_expiry ON oauth_flows (expires_at);

CREATE TABLE oauth_connections (
    id               TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider_id      TEXT NOT NULL REFERENCES oauth_providers(id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    scopes           TEXT NOT NULL,  -- JSON array
    token_secret_id  TEXT REFERENCES secrets(id) ON DELETE SET NULL,
    has_refresh      BIGINT NOT NULL,
    expires_at       BIGINT,
    last_refresh_at  BIGINT,
    last_used_at     BIGINT,
    last_error       TEXT,
    refresh_failures BIGINT NOT NULL,
    next_refresh_at  BIGINT,
    -- One replica refreshes a connection at a time: it holds the lease until `lease_until`.
    lease_owner      TEXT,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX oauth_connections_owner ON oauth_connections (owner_id, id);
CREATE INDEX oauth_connections_due ON oauth_connections (next_refresh_at);

-- Connection grants: which agent acts with which connection, through which server.
ALTER TABLE grants ADD COLUMN connection_id TEXT REFERENCES oauth_connections(id) ON DELETE CASCADE;
DROP INDEX grants_target;
CREATE UNIQUE INDEX grants_target ON grants
    (agent_id, kind, COALESCE(toolbox_id, ''), COALESCE(server_id, ''), COALESCE(tool, ''),
     COALESCE(connection_id, ''));
