-- Connection leases: one row per open connection of a subject that has a
-- connection limit, so the limit holds across every herald replica. A
-- replica renews its rows while it lives; rows of a replica that died
-- expire and stop counting.
CREATE TABLE herald.leases (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject    text        NOT NULL,
    node       text        NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX leases_subject ON herald.leases (subject, expires_at);
CREATE INDEX leases_node ON herald.leases (node);
