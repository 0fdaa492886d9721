-- The schema itself stays: golang-migrate keeps its version table in it.
DROP FUNCTION IF EXISTS herald.publish(text, text, jsonb);
DROP TABLE IF EXISTS herald.sequencer_state;
DROP TABLE IF EXISTS herald.event_log;
DROP TABLE IF EXISTS herald.events;
