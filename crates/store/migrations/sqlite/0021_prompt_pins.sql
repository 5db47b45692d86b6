-- Prompts and resource templates are pinned like tools (issue 13.2): pins and held changes
-- say what they are of. Existing rows are tools' and keep their hashes and approvals.
-- SQLite cannot change a primary key in place, so tool_pins is rebuilt.
-- Keep in step with ../postgres/0021_prompt_pins.sql.

CREATE TABLE tool_pins_new (
    server_id   TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL DEFAULT 'tool',
    tool        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    definition  TEXT NOT NULL,
    flags       TEXT NOT NULL,
    pinned_at   BIGINT NOT NULL,
    approved_by TEXT,
    hashing     BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (server_id, kind, tool)
);
INSERT INTO tool_pins_new (server_id, kind, tool, hash, definition, flags, pinned_at, approved_by, hashing)
    SELECT server_id, 'tool', tool, hash, definition, flags, pinned_at, approved_by, hashing FROM tool_pins;
DROP TABLE tool_pins;
ALTER TABLE tool_pins_new RENAME TO tool_pins;

ALTER TABLE tool_changes ADD COLUMN kind TEXT NOT NULL DEFAULT 'tool';
DROP INDEX tool_changes_once;
CREATE UNIQUE INDEX tool_changes_once ON tool_changes (server_id, kind, tool, new_hash);

-- When a server's prompts and resource templates were first pinned: until then its next
-- listing is their first discovery (pinned on sight, also for a server upgraded from
-- before they were pinned); after it, one that appears is held like a new tool.
ALTER TABLE servers ADD COLUMN listings_pinned_at BIGINT;
