ALTER TABLE herald.sequencer_state
    DROP COLUMN epoch,
    DROP COLUMN epoch_sysid,
    DROP COLUMN epoch_db_oid,
    DROP COLUMN epoch_timeline;
