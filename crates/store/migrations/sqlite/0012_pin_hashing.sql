-- Rug-pull defence (issue 13.2): pins now hash the whole forwarded definition (icons and
-- _meta included). Pins made before are hashing 1; the gateway re-pins such a pin under
-- the new hashing, without a hold, when the tool still matches it under the old one.
-- Keep in step with ../postgres/0012_pin_hashing.sql.

ALTER TABLE tool_pins ADD COLUMN hashing BIGINT NOT NULL DEFAULT 1;
