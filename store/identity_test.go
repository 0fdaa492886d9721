package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-dev/herald/store"
)

// TestEpochIdentityWithoutPrivileges: herald's role is not a superuser and
// the installation has revoked the functions the identity reads besides the
// database OID (pg_control_system(), pg_walfile_name()). The sequencer
// records what it can read (the OID), marks the rest unknown, and
// sequences as usual; a dump restored into a new database is still a new
// epoch.
func TestEpochIdentityWithoutPrivileges(t *testing.T) {
	root := tempRoot(t)
	c := throwaway(t, filepath.Join(root, "pg"), nil)
	ctx := context.Background()
	admin := openPool(t, c.URL("postgres"))
	for _, q := range []string{`CREATE ROLE app LOGIN`, `CREATE DATABASE app OWNER app`} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Function privileges live in each database's catalog.
	revoke := func() {
		su := openPool(t, c.URL("app"))
		defer su.Close()
		for _, q := range []string{
			`REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC`,
			`REVOKE EXECUTE ON FUNCTION pg_walfile_name(pg_lsn) FROM PUBLIC`,
		} {
			if _, err := su.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	revoke()
	url := strings.Replace(c.URL("app"), "user=postgres", "user=app", 1)
	if _, err := store.Migrate(ctx, url, store.MigrateUp, 0); err != nil {
		t.Fatal(err)
	}
	pool := openPool(t, url)
	var super bool
	if err := pool.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil || super {
		t.Fatalf("connected as a superuser (%v): the test would prove nothing", err)
	}
	if _, err := pool.Exec(ctx, `SELECT system_identifier FROM pg_control_system()`); err == nil {
		t.Fatal("pg_control_system() is still callable")
	}
	n1 := startNodeOn(t, url)
	dump := filepath.Join(root, "app.dump")
	held := before(t, pool, "c", func() {
		pgTool(t, "pg_dump", "-h", c.Dir(), "-U", "postgres", "-d", "app", "-Fc", "-f", dump)
	})
	var sysid string
	var oid, timeline int64
	if err := pool.QueryRow(ctx, `SELECT epoch_sysid, epoch_db_oid, epoch_timeline FROM herald.sequencer_state`).Scan(&sysid, &oid, &timeline); err != nil {
		t.Fatal(err)
	}
	if sysid != "" || timeline != 0 || oid == 0 {
		t.Fatalf("identity recorded: system %q, oid %d, timeline %d; want only the oid", sysid, oid, timeline)
	}
	if err := n1.seq.Err(); err != nil {
		t.Fatalf("sequencer: %v", err)
	}
	n1.stop()
	pool.Close()
	for _, q := range []string{`DROP DATABASE app WITH (FORCE)`, `CREATE DATABASE app OWNER app`} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	revoke()
	pgTool(t, "pg_restore", "-h", c.Dir(), "-U", "postgres", "-d", "app", dump)
	n2 := startNodeOn(t, url)
	pool2 := openPool(t, url)
	publish(t, pool2, "c", 1, newOnFork)
	resumeAfterFork(t, n2, pool2, held, "c")
}
