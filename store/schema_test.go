package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/migrations"
	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/store/pgtest"
)

func TestBadRowsRejectedByDatabase(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	big := `{"x":"` + strings.Repeat("a", 8200) + `"}`
	tests := []struct {
		name, channel, typ, data, wantMsg string
	}{
		{"bad channel", "build 1", "message", `{}`, "channel must be"},
		{"empty channel", "", "message", `{}`, "channel must be"},
		{"long channel", strings.Repeat("a", 165), "message", `{}`, "channel must be"},
		{"data array", "build-1", "message", `[1,2]`, "data must be a JSON object"},
		{"data string", "build-1", "message", `"hi"`, "data must be a JSON object"},
		{"data too big", "build-1", "message", big, "data must be at most 8 KiB"},
		{"type newline", "build-1", "a\nb", `{}`, "type must be"},
		{"type empty", "build-1", "", `{}`, "type must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := conn.Exec(ctx, `INSERT INTO herald.events (channel, type, data) VALUES ($1, $2, $3::jsonb)`, tt.channel, tt.typ, tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("insert: got %v, want error containing %q", err, tt.wantMsg)
			}
			// The same rules hold for the function and for Append.
			_, err = conn.Exec(ctx, `SELECT herald.publish($1, $2, $3::jsonb)`, tt.channel, tt.typ, tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("publish(): got %v, want error containing %q", err, tt.wantMsg)
			}
			ne := herald.NewEvent{Channel: tt.channel, Type: tt.typ, Data: []byte(tt.data)}
			if tt.typ == "" {
				return // Append fills in the default type
			}
			if err := ne.Validate(); err == nil {
				t.Fatalf("Validate accepted what the database rejects")
			}
		})
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM herald.events`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("inbox has %d rows (err %v), want 0", n, err)
	}
	// A good row with the default type goes in.
	if _, err := conn.Exec(ctx, `SELECT herald.publish('private-build-190852', NULL, '{"build":190852,"state":"STARTED"}')`); err != nil {
		t.Fatalf("good row: %v", err)
	}
}

// TestMigrateTakesPoolURL: the DATABASE_URL herald serve accepts (with the
// pool's own pool_max_conns) migrates too; pgx alone would send the pool
// setting to the server as an unknown parameter and fail.
func TestMigrateTakesPoolURL(t *testing.T) {
	url := pgtest.URL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	v, err := store.Migrate(context.Background(), url+sep+"pool_max_conns=4", store.MigrateUp, 0)
	if err != nil || v != migrations.Latest {
		t.Fatalf("migrate up with pool_max_conns: %d, %v; want %d", v, err, migrations.Latest)
	}
}

func TestMigrateDownAndUp(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	v, err := store.Migrate(ctx, url, store.MigrateVersion, 0)
	if err != nil || v != migrations.Latest {
		t.Fatalf("version = %d, %v; want %d", v, err, migrations.Latest)
	}
	if v, err = store.Migrate(ctx, url, store.MigrateDown, 0); err != nil || v != 0 {
		t.Fatalf("down: %d, %v", v, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('herald.events') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatalf("look up herald.events after down: %v", err)
	}
	if exists {
		t.Fatal("herald.events still exists after down")
	}
	if v, err = store.Migrate(ctx, url, store.MigrateUp, 0); err != nil || v != migrations.Latest {
		t.Fatalf("up again: %d, %v", v, err)
	}
	if err := conn.QueryRow(ctx, `SELECT to_regclass('herald.events') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatalf("look up herald.events after up: %v", err)
	}
	if !exists {
		t.Fatal("herald.events missing after up")
	}
}

func TestMigrateDirtyExplainsWhatToDo(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE herald.schema_migrations SET dirty = true`); err != nil {
		t.Fatal(err)
	}
	_, err = store.Migrate(ctx, url, store.MigrateUp, 0)
	if err == nil || !strings.Contains(err.Error(), "herald migrate force") {
		t.Fatalf("got %v, want advice to force", err)
	}
	if _, err := store.Migrate(ctx, url, store.MigrateForce, migrations.Latest); err != nil {
		t.Fatalf("force: %v", err)
	}
	if _, err := store.Migrate(ctx, url, store.MigrateUp, 0); err != nil {
		t.Fatalf("up after force: %v", err)
	}
}
