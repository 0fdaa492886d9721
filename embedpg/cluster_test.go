package embedpg_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/embedpg"
)

// TestCluster starts a cluster, creates a database (twice: the second is
// a no-op), connects to it by SocketURL, and stops it: Running follows.
func TestCluster(t *testing.T) {
	if _, err := embedpg.Find(); errors.Is(err, embedpg.ErrNoPostgres) {
		t.Skip(err)
	}
	root, err := os.MkdirTemp("", "herald-embedpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	// As root the cluster runs as the postgres user, who must reach it.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "pg")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := embedpg.Start(ctx, embedpg.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if !embedpg.Running(dir) {
		t.Fatal("Running is false for a started cluster")
	}
	// A name that needs quoting, so psql's %I quoting is exercised.
	const name = `an "odd" db`
	for range 2 {
		if err := c.CreateDatabase(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := c.URL(name), embedpg.SocketURL(c.Dir(), name); got != want {
		t.Fatalf("URL %q, SocketURL %q", got, want)
	}
	conn, err := pgx.Connect(ctx, c.URL(name))
	if err != nil {
		t.Fatalf("connect to the created database: %v", err)
	}
	var db string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil || db != name {
		t.Fatalf("current_database() = %q, %v; want %q", db, err, name)
	}
	conn.Close(ctx)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	// Stop returns once postgres has exited; Exited closes just after.
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("Exited not closed after Stop")
	}
	if embedpg.Running(dir) {
		t.Fatal("Running after Stop")
	}
	// A restart on the same directory finds the data.
	c2, err := embedpg.Start(ctx, embedpg.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	conn, err = pgx.Connect(ctx, c2.URL(name))
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	conn.Close(ctx)
}

func TestSocketURL(t *testing.T) {
	got := embedpg.SocketURL("/var/lib/my herald", "herald")
	want := "postgres:///herald?host=%2Fvar%2Flib%2Fmy%20herald&port=5432&user=postgres"
	if got != want {
		t.Fatalf("SocketURL = %q, want %q", got, want)
	}
}
