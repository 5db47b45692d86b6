-- The vault: secrets sealed with envelope encryption (see crates/vault). One row per
-- secret holding only its current version: an update reseals under a new data key and
-- bumps `version`; the previous ciphertext is overwritten, so a replaced credential does
-- not linger in the database. Nothing here decrypts without the key-encryption key, which
-- lives outside the database; `kek_id` names the one that wrapped `wrapped_key`.
-- Keep in step with ../postgres/0003_vault.sql.
CREATE TABLE secrets (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT REFERENCES users(id) ON DELETE CASCADE, -- NULL: shared (admins)
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    nonce       BLOB NOT NULL,        -- 24-byte XChaCha20 nonce of the ciphertext
    ciphertext  BLOB NOT NULL,        -- sealed value with its Poly1305 tag
    wrapped_key BLOB NOT NULL,        -- the data key, sealed under the KEK (nonce ‖ ciphertext)
    kek_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX secrets_owner_name ON secrets (COALESCE(owner_id, ''), name);
CREATE INDEX secrets_kek ON secrets (kek_id, id);
