-- Registry allow-list per toolbox (issue 12.3): a JSON array of registry hosts
-- ('["ghcr.io","localhost:5000"]') its servers' images may come from; NULL: any.
-- Keep in step with ../postgres/0022_toolbox_allowed_registries.sql.

ALTER TABLE toolboxes ADD COLUMN allowed_registries TEXT;
