package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestSchemaCurrent: readyz's question. A migrated database is current; a
// dirty one, or one migrated all the way down, is not.
func TestSchemaCurrent(t *testing.T) {
	db, url := pgtest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	check := func(step string, want bool) {
		t.Helper()
		got, err := db.SchemaCurrent(ctx)
		if err != nil || got != want {
			t.Fatalf("%s: SchemaCurrent = %v, %v; want %v", step, got, err, want)
		}
	}
	check("migrated", true)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE herald.schema_migrations SET dirty = true`); err != nil {
		t.Fatal(err)
	}
	check("dirty", false)
	if _, err := conn.Exec(ctx, `UPDATE herald.schema_migrations SET dirty = false`); err != nil {
		t.Fatal(err)
	}
	check("clean again", true)
	if _, err := store.Migrate(ctx, url, store.MigrateDown, 0); err != nil {
		t.Fatal(err)
	}
	check("migrated down", false)
}
