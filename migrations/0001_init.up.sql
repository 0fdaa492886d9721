-- herald's schema. Apps write notices into the inbox (herald.events) inside
-- their own transactions; herald's sequencer copies them, in commit order,
-- into the event log (herald.event_log) with a dense cursor (seq).

CREATE SCHEMA IF NOT EXISTS herald;

-- The inbox. xid is the writing transaction's id (taken at INSERT time), so
-- the sequencer can tell from two snapshots which rows became visible between
-- them. The constraint names are the error messages apps see.
CREATE TABLE herald.events (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    channel    text        NOT NULL,
    type       text        NOT NULL DEFAULT 'message',
    data       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (xid, id),
    CONSTRAINT "channel must be 1-164 chars of A-Za-z0-9 _-=@,.;"
        CHECK (channel ~ '^[A-Za-z0-9_=@,.;-]{1,164}$'),
    CONSTRAINT "type must be 1-64 chars of A-Za-z0-9 _-.:"
        CHECK (type ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    CONSTRAINT "data must be a JSON object"
        CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT "data must be at most 8 KiB of JSON"
        CHECK (octet_length(data::text) <= 8192)
);

-- The event log, partitioned by range of seq so retention drops whole
-- partitions (cheap) instead of deleting rows (WAL, vacuum).
CREATE TABLE herald.event_log (
    seq     bigint      NOT NULL,
    channel text        NOT NULL,
    type    text        NOT NULL,
    data    jsonb       NOT NULL,
    at      timestamptz NOT NULL,
    PRIMARY KEY (seq)
) PARTITION BY RANGE (seq);

-- Replay of one channel at any depth is an index range scan.
CREATE INDEX event_log_channel_seq ON herald.event_log (channel, seq);

-- One row: the sequencer's progress and the retained floor.
--   last_seq          highest seq written (the head)
--   snap              snapshot taken by the last step that sequenced rows
--   floor_seq         lowest seq still retained; a cursor below floor_seq - 1 resets
--   partition_size    seqs per event_log partition
--   partitioned_upto  event_log partitions exist for seq < partitioned_upto
CREATE TABLE herald.sequencer_state (
    singleton        boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq         bigint      NOT NULL DEFAULT 0,
    snap             pg_snapshot NOT NULL DEFAULT pg_current_snapshot(),
    floor_seq        bigint      NOT NULL DEFAULT 1,
    partition_size   bigint      NOT NULL DEFAULT 1000000 CHECK (partition_size > 0),
    partitioned_upto bigint      NOT NULL DEFAULT 1
);
INSERT INTO herald.sequencer_state DEFAULT VALUES;

-- herald.publish is the same INSERT for apps that prefer a function call.
-- It takes the transaction's xid, like the column default.
CREATE FUNCTION herald.publish(p_channel text, p_type text, p_data jsonb)
RETURNS bigint
LANGUAGE sql
AS $$
    INSERT INTO herald.events (channel, type, data)
    VALUES (p_channel, coalesce(p_type, 'message'), coalesce(p_data, '{}'::jsonb))
    RETURNING id;
$$;
