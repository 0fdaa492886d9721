-- The schema itself stays: golang-migrate keeps its version table in it.

-- A herald still running takes these tables' locks in more than one order
-- (the sequencer's step: the inbox, then the log, then its state; the feed's
-- read: the state, then the log). Dropping them one by one could take one
-- lock and wait for the next while a herald statement held the second and
-- waited for the first: Postgres then aborts this migration as a deadlock
-- and leaves it dirty. So all three are taken at once or not at all, trying
-- again until they are (NOWAIT in a subtransaction holds none on failure),
-- for up to 30 s; then the plain wait.
DO $$
DECLARE
	tries int := 0;
BEGIN
	IF to_regclass('herald.events') IS NULL OR to_regclass('herald.event_log') IS NULL
		OR to_regclass('herald.sequencer_state') IS NULL THEN
		RETURN;
	END IF;
	LOOP
		BEGIN
			LOCK TABLE herald.events, herald.event_log, herald.sequencer_state IN ACCESS EXCLUSIVE MODE NOWAIT;
			RETURN;
		EXCEPTION WHEN lock_not_available THEN
			tries := tries + 1;
			EXIT WHEN tries >= 600;
			PERFORM pg_sleep(0.05);
		END;
	END LOOP;
	LOCK TABLE herald.events, herald.event_log, herald.sequencer_state IN ACCESS EXCLUSIVE MODE;
END $$;

DROP FUNCTION IF EXISTS herald.publish(text, text, jsonb);
DROP TABLE IF EXISTS herald.sequencer_state;
DROP TABLE IF EXISTS herald.event_log;
DROP TABLE IF EXISTS herald.events;
