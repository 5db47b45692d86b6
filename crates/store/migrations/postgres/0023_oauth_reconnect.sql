-- A flow may re-authorize an existing connection: the callback then puts the new tokens on
-- that connection (same id, so its grants hold) instead of creating another.
ALTER TABLE oauth_flows ADD COLUMN reconnects TEXT;
