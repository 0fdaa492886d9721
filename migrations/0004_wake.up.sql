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
-- Every app role that inserts reads the flag.
GRANT SELECT ON SEQUENCE herald.sequencer_sleeping TO PUBLIC;

-- One simple expression, not a query: plpgsql evaluates it without the
-- executor, a few microseconds per INSERT statement. Names are qualified
-- because the function runs with the app's search_path.
CREATE FUNCTION herald.wake_sequencer() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF pg_catalog.pg_sequence_last_value('herald.sequencer_sleeping'::regclass) = 1 THEN
        PERFORM pg_catalog.pg_notify('herald_wake', '');
    END IF;
    RETURN NULL;
END
$$;

-- Once per statement, before its rows: the statement already holds its
-- RowExclusiveLock on the inbox, which is what the sequencer looks for
-- when it checks for writers in flight after setting the flag.
CREATE TRIGGER wake_sequencer BEFORE INSERT ON herald.events
    FOR EACH STATEMENT EXECUTE FUNCTION herald.wake_sequencer();
