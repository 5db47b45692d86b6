-- MCP authorization hardening (issue 11.4): a token family remembers the authorization
-- code it was issued for, so a code presented a second time revokes what the first
-- exchange issued (RFC 6749 §4.1.2: the code may have been stolen). Families made before
-- have none. Keep in step with the other backend's 0014_mcp_auth_codes.sql.

ALTER TABLE mcp_families ADD COLUMN code_id TEXT;
CREATE INDEX mcp_families_code ON mcp_families (code_id);
