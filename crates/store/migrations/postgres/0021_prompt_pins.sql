-- Prompts and resource templates are pinned like tools (issue 13.2): pins and held changes
-- say what they are of. Existing rows are tools' and keep their hashes and approvals.
-- Keep in step with ../sqlite/0021_prompt_pins.sql.

ALTER TABLE tool_pins ADD COLUMN kind TEXT NOT NULL DEFAULT 'tool';
ALTER TABLE tool_pins DROP CONSTRAINT tool_pins_pkey;
ALTER TABLE tool_pins ADD PRIMARY KEY (server_id, kind, tool);

ALTER TABLE tool_changes ADD COLUMN kind TEXT NOT NULL DEFAULT 'tool';
DROP INDEX tool_changes_once;
CREATE UNIQUE INDEX tool_changes_once ON tool_changes (server_id, kind, tool, new_hash);

-- When a server's prompts and resource templates were first pinned: until then its next
-- listing is their first discovery (pinned on sight, also for a server upgraded from
-- before they were pinned); after it, one that appears is held like a new tool.
ALTER TABLE servers ADD COLUMN listings_pinned_at BIGINT;
