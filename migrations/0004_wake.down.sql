DROP TRIGGER IF EXISTS wake_sequencer ON herald.events;
DROP FUNCTION IF EXISTS herald.wake_sequencer();
DROP SEQUENCE IF EXISTS herald.sequencer_sleeping;
