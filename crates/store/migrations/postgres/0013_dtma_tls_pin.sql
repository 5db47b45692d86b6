-- The DTMA channel (issue 11.3): the SHA-256 of the public key (SPKI) a toolbox's DTMA
-- serves TLS with, pinned at join ('sha256:<hex>'); the control plane and the gateway
-- accept only that key from it. NULL: a DTMA on plain HTTP, or one that joined before
-- pins (it pins with its first heartbeat that reports a key).
-- Keep in step with ../sqlite/0013_dtma_tls_pin.sql.

ALTER TABLE toolboxes ADD COLUMN dtma_tls_pin TEXT;
