-- Chat (issue 10): LLM endpoints, per-agent chat settings, conversations with their turns
-- sealed by the vault, per-user daily token usage, and the turn credential's mark on tokens.
-- Keep in step with ../sqlite/0009_chat.sql.

-- owner_id NULL: a shared endpoint (admins). api_key_secret is the NAME of a vault secret
-- in the endpoint's namespace, never a value.
CREATE TABLE llms (
    id             TEXT PRIMARY KEY,
    owner_id       TEXT REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    base_url       TEXT NOT NULL,
    api_key_secret TEXT,
    model          TEXT,
    max_tools      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX llms_owner_name ON llms (COALESCE(owner_id, ''), name);

CREATE TABLE agent_chat (
    agent_id      TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    llm_id        TEXT NOT NULL REFERENCES llms(id) ON DELETE CASCADE,
    model         TEXT,
    system_prompt TEXT,
    temperature   DOUBLE PRECISION,
    max_steps     BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE chats (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX chats_owner ON chats (owner_id, id);

-- One row per finished turn (a failed turn leaves none). The turn (user text, answer, tool
-- calls with their results, the LLM messages to resume from) is sealed like a secret: its
-- own data key, wrapped by the vault's current KEK, bound to (owner, chat, seq).
CREATE TABLE chat_turns (
    chat_id       TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    nonce         BYTEA NOT NULL,
    ciphertext    BYTEA NOT NULL,
    wrapped_key   BYTEA NOT NULL,
    kek_id        TEXT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (chat_id, seq)
);

-- LLM tokens used per user and UTC day (unix days), failed turns included.
CREATE TABLE chat_usage (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day     BIGINT NOT NULL,
    tokens  BIGINT NOT NULL,
    PRIMARY KEY (user_id, day)
);

-- A turn's minted agent credential: the chat it acts for (NULL: an ordinary agent token).
ALTER TABLE tokens ADD COLUMN chat_id TEXT REFERENCES chats(id) ON DELETE CASCADE;
