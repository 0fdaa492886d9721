DROP TABLE IF EXISTS herald.revocations;
