-- Token revocations: by jti (one token) or by sub (every token of a user
-- issued at or before revoked_at). A row stops mattering at expires_at,
-- once every token it could match has expired; herald deletes such rows
-- whenever it adds one, so the table does not grow forever. Replicas
-- learn of new rows by NOTIFY herald_revocations.
CREATE TABLE herald.revocations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jti        text,
    sub        text,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CHECK ((jti IS NULL) <> (sub IS NULL)),
    CHECK (length(coalesce(jti, sub)) BETWEEN 1 AND 256)
);
CREATE INDEX revocations_expires ON herald.revocations (expires_at);
