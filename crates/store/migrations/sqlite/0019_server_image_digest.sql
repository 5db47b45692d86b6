-- Images by digest (issue 12.3): the image a container server is pinned to
-- ('sha256:<hex>', the image ID its toolbox resolved at the first deploy). Restarts and
-- re-creates run exactly it; NULL until the toolbox reports it (and for servers that are
-- not images).
-- Keep in step with ../postgres/0019_server_image_digest.sql.

ALTER TABLE servers ADD COLUMN image_digest TEXT;
