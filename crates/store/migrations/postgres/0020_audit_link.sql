-- Every appended audit row must extend the chain's head, and moves it: the database keeps
-- the chain linear whoever writes (see the SQLite twin). The head moves in the BEFORE
-- trigger: PostgreSQL runs AFTER row triggers at the end of the statement, too late for
-- the next row of a multi-row INSERT to be checked against it.
CREATE FUNCTION audit_events_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash
        WHERE id = 1 AND seq = NEW.seq - 1 AND hash = NEW.prev_hash;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit chain head moved';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_events_link BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_link();
