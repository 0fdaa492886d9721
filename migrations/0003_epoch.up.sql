-- Epochs: seqs are dense and ordered only within one history. When the
-- database may have gone back in time (recreated or restored from a dump, a
-- physical backup or PITR, a replica promoted without the primary's last
-- commits), the sequencer starts a new epoch; clients holding a cursor of
-- another epoch are reset instead of silently skipping reused seqs.
--   epoch            the current epoch, 1-16 chars of [a-z0-9]; part of every id
--   epoch_sysid      pg_control_system().system_identifier it was checked under ('' = unknown)
--   epoch_db_oid     the database's OID it was checked under (0 = not yet recorded)
--   epoch_timeline   the WAL timeline it was checked under (0 = unknown)
ALTER TABLE herald.sequencer_state
    ADD COLUMN epoch          text   NOT NULL DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 10)
        CHECK (epoch ~ '^[a-z0-9]{1,16}$'),
    ADD COLUMN epoch_sysid    text   NOT NULL DEFAULT '',
    ADD COLUMN epoch_db_oid   bigint NOT NULL DEFAULT 0,
    ADD COLUMN epoch_timeline bigint NOT NULL DEFAULT 0;
