-- Wake on commit. While the sequencer sleeps it sets herald.sequencer_sleeping
-- to 1, and an INSERT into the inbox then sends one NOTIFY herald_wake,
-- delivered at the app's commit. While rows flow the sequencer ticks, the
-- flag is 0 and the trigger sends nothing, so busy app commits never queue on
-- Postgres's notification lock.
--
-- A sequence, not a table row: setval takes effect at once, outside any
-- transaction, and reading it ignores snapshots, so a REPEATABLE READ writer
-- whose snapshot predates the flag still sees it.
CREATE SEQUENCE herald.sequencer_sleeping AS smallint MINVALUE 0 MAXVALUE 1 START 0;

-- SECURITY DEFINER so that an app role needs nothing on the sequence; the
-- search_path is pinned because of it.
CREATE FUNCTION herald.wake_sequencer() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF (SELECT last_value FROM herald.sequencer_sleeping) = 1 THEN
        PERFORM pg_notify('herald_wake', '');
    END IF;
    RETURN NULL;
END
$$;

-- Once per statement, before its rows: the statement already holds its
-- RowExclusiveLock on the inbox, which is what the sequencer looks for
-- when it checks for writers in flight after setting the flag.
CREATE TRIGGER wake_sequencer BEFORE INSERT ON herald.events
    FOR EACH STATEMENT EXECUTE FUNCTION herald.wake_sequencer();
