-- The DTMA channel: where a toolbox's agent is reached and what it last reported;
-- per server, what its toolbox observed.
ALTER TABLE toolboxes ADD COLUMN dtma_url TEXT;
ALTER TABLE toolboxes ADD COLUMN report TEXT;
ALTER TABLE servers ADD COLUMN health TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE servers ADD COLUMN observed TEXT;
CREATE INDEX toolboxes_heartbeat ON toolboxes (status, last_heartbeat_at);
CREATE INDEX servers_toolbox ON servers (toolbox_id);
