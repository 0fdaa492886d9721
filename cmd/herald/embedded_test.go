package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald/embedpg"
	"github.com/herald-dev/herald/migrations"
)

// postmasterPid reads the pid from dir's postmaster.pid.
func postmasterPid(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("embedded cluster not running in %s: %v", dir, err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatalf("postmaster.pid: %q", b)
	}
	return pid
}

// assertStopped fails t unless the cluster in dir has shut down: no
// postmaster.pid, no socket, no process.
func assertStopped(t *testing.T, dir string, pid int) {
	t.Helper()
	for _, f := range []string{"postmaster.pid", ".s.PGSQL.5432"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after serve returned (%v)", f, err)
		}
	}
	if embedpg.Running(dir) {
		t.Error("embedpg.Running after serve returned")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postgres (pid %d) still there after serve returned: kill -0 says %v", pid, err)
	}
}

// TestServeEmbeddedPostgres is the zero-configuration path: no
// DATABASE_URL, so serve runs a private PostgreSQL in HERALD_DATA_DIR; the
// other commands find it there; cancelling stops it; a second start reuses
// the data.
func TestServeEmbeddedPostgres(t *testing.T) {
	if _, err := embedpg.Find(); errors.Is(err, embedpg.ErrNoPostgres) {
		t.Skip(err)
	}
	t.Parallel()
	dataDir := filepath.Join(tempDir(t), "herald-data")
	getenv := env("HERALD_DATA_DIR", dataDir, "HERALD_LOG_LEVEL", "warn")

	srv := start(t, []string{"serve", "--listen", "127.0.0.1:0"}, getenv)
	base := srv.serveURL(t, 3*time.Minute)
	waitReady(t, base, 30*time.Second)
	pid := postmasterPid(t, dataDir)
	if !embedpg.Running(dataDir) {
		t.Fatal("no socket in the data dir")
	}

	// publish and migrate need no configuration either: they find the
	// running server's socket in the data dir.
	if _, _, err := runOnce(t, []string{"publish", "hello", `{"n":1}`}, getenv); err != nil {
		t.Fatalf("publish to the embedded database: %v", err)
	}
	p := poll(t, base, "channel=hello&cursor=0&timeout=20")
	if len(p.Events) != 1 || string(p.Events[0].Data) != `{"n":1}` {
		t.Fatalf("poll: %+v", p)
	}
	out, _, err := runOnce(t, []string{"migrate", "version"}, getenv)
	if want := fmt.Sprintf("schema version %d\n", migrations.Latest); err != nil || out != want {
		t.Errorf("migrate version: %v %q, want %q", err, out, want)
	}

	if err := srv.stop(t, 40*time.Second); err != nil {
		t.Fatalf("serve returned %v after cancel, want nil", err)
	}
	assertStopped(t, dataDir, pid)
	if t.Failed() {
		return
	}

	// Once it is gone, publish says so instead of starting a database.
	if _, _, err := runOnce(t, []string{"publish", "hello", `{"n":2}`}, getenv); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Errorf("publish with the embedded server stopped: %v", err)
	}
	if embedpg.Running(dataDir) {
		t.Fatal("publish started the embedded cluster")
	}

	// A restart reuses the cluster and its data.
	srv2 := start(t, []string{"serve", "--listen", "127.0.0.1:0"}, getenv)
	base2 := srv2.serveURL(t, 2*time.Minute)
	waitReady(t, base2, 30*time.Second)
	pid2 := postmasterPid(t, dataDir)
	p2 := poll(t, base2, "channel=hello&cursor=0&timeout=1")
	if len(p2.Events) != 1 || p2.Cursor != p.Cursor {
		t.Errorf("after restart: %+v, want the event published before (cursor %s)", p2, p.Cursor)
	}
	if err := srv2.stop(t, 40*time.Second); err != nil {
		t.Fatalf("second serve returned %v", err)
	}
	assertStopped(t, dataDir, pid2)
}
