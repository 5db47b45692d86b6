-- Every appended audit row must extend the chain's head, and moves it: the database keeps
-- the chain linear whoever writes. A writer that knows the head (the gateway's audit
-- writer, from its own last batch) appends a batch in one autocommitted INSERT; one whose
-- head is stale gets 'audit chain head moved' and writes nothing (the whole statement is
-- undone), and takes the chain lock to read the head instead.
CREATE TRIGGER audit_events_link BEFORE INSERT ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit chain head moved')
    WHERE NOT EXISTS (SELECT 1 FROM audit_head
                      WHERE id = 1 AND seq = NEW.seq - 1 AND hash = NEW.prev_hash);
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
END;
