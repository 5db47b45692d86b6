-- The dashboard's history: per-minute metric rollups and servers' status moves, kept for
-- the configured retention (7 days by default) and pruned by the metrics task.

-- Calls per minute, server and tool, one row per writing process (replica).
CREATE TABLE metric_calls (
    minute    BIGINT NOT NULL,
    server_id TEXT NOT NULL,
    tool      TEXT NOT NULL,
    replica   TEXT NOT NULL,
    calls     BIGINT NOT NULL,
    errors    BIGINT NOT NULL,
    p50_us    BIGINT NOT NULL,
    p99_us    BIGINT NOT NULL,
    PRIMARY KEY (minute, server_id, tool, replica)
);
CREATE INDEX metric_calls_server ON metric_calls (server_id, minute);

-- CPU and memory per minute of a server or a toolbox, from heartbeats.
CREATE TABLE metric_resources (
    subject_kind TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    minute       BIGINT NOT NULL,
    cpu_percent  DOUBLE PRECISION,
    memory_bytes BIGINT,
    PRIMARY KEY (subject_kind, subject_id, minute)
);
CREATE INDEX metric_resources_minute ON metric_resources (minute);

-- Each move of a server's observed status.
CREATE TABLE server_status_log (
    server_id TEXT NOT NULL,
    at        BIGINT NOT NULL,
    status    TEXT NOT NULL,
    error     TEXT,
    restarts  BIGINT NOT NULL,
    PRIMARY KEY (server_id, at, status)
);
CREATE INDEX server_status_log_at ON server_status_log (at);
