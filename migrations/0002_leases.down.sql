DROP TABLE IF EXISTS herald.leases;
