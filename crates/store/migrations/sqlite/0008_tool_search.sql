-- Tool search (issue 15): discovery modes per agent and per token, always-visible tools,
-- toolsets. Tools are kept by identity (toolbox, server, the server's own tool name), never
-- by the prefixed name an agent sees, which a new same-named server can change.
-- Keep in step with ../postgres/0008_tool_search.sql.

ALTER TABLE agents ADD COLUMN discovery TEXT NOT NULL DEFAULT 'all';
-- NULL: the agent's own mode.
ALTER TABLE tokens ADD COLUMN discovery TEXT;

CREATE TABLE agent_visible_tools (
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    toolbox_id TEXT NOT NULL REFERENCES toolboxes(id) ON DELETE CASCADE,
    server_id  TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    tool       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, server_id, tool)
);

CREATE TABLE toolsets (
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, name)
);

-- Members belong to a toolset by (agent_id, toolset); deleting a toolset deletes them in
-- the same transaction (a composite foreign key reads differently on the two backends).
CREATE TABLE toolset_tools (
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    toolset    TEXT NOT NULL,
    toolbox_id TEXT NOT NULL REFERENCES toolboxes(id) ON DELETE CASCADE,
    server_id  TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    tool       TEXT NOT NULL,
    PRIMARY KEY (agent_id, toolset, server_id, tool)
);
