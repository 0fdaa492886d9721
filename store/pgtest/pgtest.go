// Package pgtest gives tests a real PostgreSQL: a fresh database per test,
// cloned from a template migrated once per test binary (fast, and NOTIFY
// stays isolated because channels are per database). The server is
// TEST_DATABASE_URL when set, else a throwaway cluster started from the local
// PostgreSQL installation.
package pgtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/embedpg"
	"github.com/herald-dev/herald/store"
)

var (
	once     sync.Once
	onceErr  error
	admin    func(db string) string // URL of a database on the test server
	template string
	cluster  *embedpg.Cluster
	tmpRoot  string
	seq      atomic.Int64
	createMu sync.Mutex // CREATE DATABASE ... TEMPLATE must not overlap on one template
)

// Main runs the package's tests and then stops the throwaway cluster:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown drops the template and stops the cluster, if any.
func Shutdown() {
	if admin != nil && template != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if conn, err := pgx.Connect(ctx, admin("postgres")); err == nil {
			conn.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, template))
			conn.Close(ctx)
		}
		cancel()
	}
	if cluster != nil {
		cluster.Stop()
	}
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
}

func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		if _, err := pgx.ParseConfig(u); err != nil {
			return fmt.Errorf("TEST_DATABASE_URL: %w", err)
		}
		admin = func(db string) string { return withDatabase(u, db) }
	} else {
		c, err := NewCluster()
		if err != nil {
			return err
		}
		cluster = c
		admin = c.URL
	}
	template = fmt.Sprintf("herald_tmpl_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	conn, err := pgx.Connect(ctx, admin("postgres"))
	if err != nil {
		return fmt.Errorf("connect to test server: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %q`, template)); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	if _, err := store.Migrate(ctx, admin(template), store.MigrateUp, 0); err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	return nil
}

// NewCluster starts a throwaway cluster in a temporary directory. The
// caller stops it (and may restart it with embedpg.Start on Dir()).
func NewCluster() (*embedpg.Cluster, error) {
	root, err := os.MkdirTemp("", "herald-pgtest-")
	if err != nil {
		return nil, err
	}
	// As root the cluster runs as the postgres user, who must reach it.
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, err
	}
	if tmpRoot == "" {
		tmpRoot = root
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return embedpg.Start(ctx, embedpg.Options{DataDir: filepath.Join(root, "pg"), Log: slog.New(slog.DiscardHandler)})
}

// URL returns the URL of a fresh migrated database for t, dropped when t
// ends.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { onceErr = setup() })
	if onceErr != nil {
		t.Fatalf("test database: %v", onceErr)
	}
	name := fmt.Sprintf("herald_t_%d_%d", os.Getpid(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin("postgres"))
	if err != nil {
		t.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	createMu.Lock()
	_, err = conn.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %q TEMPLATE %q`, name, template))
	createMu.Unlock()
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin("postgres"))
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name)); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return admin(name)
}

// AdminURL returns a URL to the server's postgres database, for tests that
// inspect or disturb the server (pg_terminate_backend and the like).
func AdminURL(t testing.TB) string {
	t.Helper()
	once.Do(func() { onceErr = setup() })
	if onceErr != nil {
		t.Fatalf("test database: %v", onceErr)
	}
	return admin("postgres")
}

// Open returns a store.DB on a fresh database, closed when t ends.
func Open(t testing.TB) (*store.DB, string) {
	t.Helper()
	u := URL(t)
	db, err := store.Open(context.Background(), u, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(db.Close)
	return db, u
}
