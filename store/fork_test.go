package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/embedpg"
	"github.com/herald-dev/herald/hub"
	"github.com/herald-dev/herald/store"
)

// The fork tests take a database back in time in the three ways the issue
// names, each on throwaway clusters of its own (never the shared server),
// and replay the reported scenario: a client holds cursor 103, the database
// goes back to 53, 70 new notices are committed, then the client resumes
// with its cursor. Without epochs it got only the last 20 of them (seqs
// 104-123 of the new history); with them it gets a reset, then all 70.

const (
	forkAt    = 53  // the head the database goes back to
	clientAt  = 103 // the head the client had seen
	newOnFork = 70  // notices committed after going back
)

// throwaway starts a private cluster on dir (initialised if empty), stopped
// when t ends.
func throwaway(t *testing.T, dir string, settings map[string]string) *embedpg.Cluster {
	t.Helper()
	if settings == nil {
		settings = map[string]string{}
	}
	// pg_basebackup copies need full-page writes for a consistent copy.
	settings["full_page_writes"] = "on"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := embedpg.Start(ctx, embedpg.Options{DataDir: dir, Settings: settings})
	if err != nil {
		t.Fatalf("start cluster in %s: %v", dir, err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// tempRoot is a directory for clusters and dumps that the postgres user
// (as which clusters run when the tests run as root) can reach.
func tempRoot(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp("", "herald-fork-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	return root
}

// pgTool runs one of PostgreSQL's programs.
func pgTool(t *testing.T, name string, args ...string) {
	t.Helper()
	bin, err := embedpg.Find()
	if err != nil {
		t.Skip(err)
	}
	out, err := exec.Command(filepath.Join(bin, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// giveToPostgres makes a copied data directory startable: without the
// original's socket lock, and (when the tests run as root) owned by the
// postgres user, as whom the cluster runs.
func giveToPostgres(t *testing.T, dir string) {
	t.Helper()
	// The copy holds the original's socket lock file; the original may
	// still be running.
	if err := os.Remove(filepath.Join(dir, ".s.PGSQL.5432.lock")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func migrated(t *testing.T, c *embedpg.Cluster, db string) string {
	t.Helper()
	if err := c.CreateDatabase(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	url := c.URL(db)
	if _, err := store.Migrate(context.Background(), url, store.MigrateUp, 0); err != nil {
		t.Fatal(err)
	}
	return url
}

// publish commits n notices {"i":from..from+n-1} on channel, one
// transaction each, and waits until the sequencer has numbered them.
func publish(t *testing.T, pool *pgxpool.Pool, channel string, from, n int) hub.State {
	t.Helper()
	ctx := context.Background()
	for i := from; i < from+n; i++ {
		if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ($1, jsonb_build_object('i', $2::int))`, channel, i); err != nil {
			t.Fatal(err)
		}
	}
	return waitHeadAtLeast(t, pool, 0)
}

// waitHeadAtLeast waits until the inbox is empty of unsequenced rows and
// the head is at least min, and returns the state.
func waitHeadAtLeast(t *testing.T, pool *pgxpool.Pool, min int64) hub.State {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st hub.State
		var logged int64
		var pending bool
		// One statement, one snapshot: everything inserted so far has a
		// seq once the stored snapshot sees every inbox row.
		err := pool.QueryRow(context.Background(), `
			SELECT s.epoch, s.last_seq, s.floor_seq, (SELECT count(*) FROM herald.event_log WHERE seq > 0),
			       EXISTS (SELECT FROM herald.events e
			               WHERE e.xid >= pg_snapshot_xmax(s.snap) OR e.xid = ANY(ARRAY(SELECT pg_snapshot_xip(s.snap))))
			FROM herald.sequencer_state s`).Scan(&st.Epoch, &st.Head, &st.Floor, &logged, &pending)
		if err == nil && st.Head >= min && logged == st.Head && !pending {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("head not at %d with everything sequenced within 30 s (last: %+v, %v)", min, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startNodeOn runs a sequencer and a feed (one herald process's store side)
// on url until t ends.
func startNodeOn(t *testing.T, url string) *node {
	t.Helper()
	return startNode(t, url, store.FeedOptions{})
}

// resumeAfterFork is the client's side of every case. The database went
// back to forkAt and newOnFork notices were committed since, so the head
// (forkAt+newOnFork) is past the client's cursor (clientAt) again. The
// client comes back with that cursor: it must get a reset into the new
// history before anything else (without epochs it was handed seqs 104-123,
// the last 20 new notices, and never heard of the first 50), and then every
// notice committed after the reset.
func resumeAfterFork(t *testing.T, n *node, pool *pgxpool.Pool, held herald.Cursor, channel string) {
	t.Helper()
	ctx := context.Background()
	head := int64(forkAt + newOnFork)
	waitFeed(t, n, head)
	sub, err := n.feed.SubscribeAt(ctx, []string{channel}, held, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var reset herald.Batch
	deadline := time.Now().Add(30 * time.Second)
	for reset.Reset == nil {
		b, err := sub.Take(ctx, 1000)
		if err != nil {
			t.Fatalf("resuming at %s: %v", held, err)
		}
		if len(b.Events) > 0 {
			var d struct{ I int }
			_ = json.Unmarshal(b.Events[0].Data, &d)
			t.Fatalf("resuming at %s: got %d notices (the first %s.%d, {\"i\":%d}) instead of a reset: the first %d new notices were skipped",
				held, len(b.Events), b.Events[0].Epoch, b.Events[0].Seq, d.I, clientAt-forkAt)
		}
		if time.Now().After(deadline) {
			t.Fatalf("resuming at %s: no reset within 30 s", held)
		}
		reset = b
		if b.Reset == nil {
			select {
			case <-sub.Ready():
			case <-time.After(time.Second):
			}
		}
	}
	if sub.Epoch() == held.Epoch || reset.Cursor != head || reset.Reset.Head != (herald.Cursor{Epoch: sub.Epoch(), Seq: head}) {
		t.Fatalf("reset to %s.%d, want the head %d of a new epoch (not %q)", sub.Epoch(), reset.Cursor, head, held.Epoch)
	}
	// From the reset on, nothing is skipped.
	publish(t, pool, channel, newOnFork+1, 3)
	got := collect(t, sub, 3, 30*time.Second)
	for i, e := range got {
		var d struct{ I int }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.I != newOnFork+1+i || e.Epoch != sub.Epoch() || e.Seq != head+int64(i)+1 {
			t.Fatalf("after the reset, notice %d: %s.%d %s; want {\"i\":%d} at %s.%d", i, e.Epoch, e.Seq, e.Data, newOnFork+1+i, sub.Epoch(), head+int64(i)+1)
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d notices after the reset, want 3", len(got))
	}
}

// waitFeed waits until n's feed has delivered up to head in the database's
// current epoch.
func waitFeed(t *testing.T, n *node, head int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := n.db.State(context.Background())
		if err == nil && n.feed.Position() == (herald.Cursor{Epoch: st.Epoch, Seq: head}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("feed at %s, want %s.%d", n.feed.Position(), st.Epoch, head)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// before is the history the client saw: the database at forkAt (where the
// copy, dump or replica stops), then more notices up to clientAt. It
// returns the client's cursor.
func before(t *testing.T, pool *pgxpool.Pool, channel string, atFork func()) herald.Cursor {
	t.Helper()
	if st := publish(t, pool, channel, 1, forkAt); st.Head != forkAt {
		t.Fatalf("head %d, want %d", st.Head, forkAt)
	}
	atFork()
	st := publish(t, pool, channel, forkAt+1, clientAt-forkAt)
	if st.Head != clientAt {
		t.Fatalf("head %d, want %d", st.Head, clientAt)
	}
	return herald.Cursor{Epoch: st.Epoch, Seq: clientAt}
}

// TestForkDumpRestore: pg_dump at 53, on to 103, then the database is
// dropped, created again and restored from the dump (same cluster: the
// restored database has a new OID, though its state row is the old one).
func TestForkDumpRestore(t *testing.T) {
	root := tempRoot(t)
	c := throwaway(t, filepath.Join(root, "pg"), nil)
	url := migrated(t, c, "app")
	n1 := startNodeOn(t, url)
	pool := openPool(t, url)
	dump := filepath.Join(root, "app.dump")
	held := before(t, pool, "c", func() {
		pgTool(t, "pg_dump", "-h", c.Dir(), "-U", "postgres", "-d", "app", "-Fc", "-f", dump)
	})
	n1.stop()
	pool.Close()
	admin := openPool(t, c.URL("postgres"))
	for _, q := range []string{`DROP DATABASE app WITH (FORCE)`, `CREATE DATABASE app`} {
		if _, err := admin.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	pgTool(t, "pg_restore", "-h", c.Dir(), "-U", "postgres", "-d", "app", dump)

	n2 := startNodeOn(t, url)
	pool2 := openPool(t, url)
	publish(t, pool2, "c", 1, newOnFork)
	resumeAfterFork(t, n2, pool2, held, "c")
}

// TestForkPhysicalBackupRestored: pg_basebackup at 53, on to 103, then the
// primary is gone and the backup is restored and started with archive
// recovery: it ends recovery on a new timeline, at 53.
func TestForkPhysicalBackupRestored(t *testing.T) {
	root := tempRoot(t)
	a := throwaway(t, filepath.Join(root, "a"), nil)
	url := migrated(t, a, "app")
	n1 := startNodeOn(t, url)
	pool := openPool(t, url)
	backup := filepath.Join(root, "b")
	held := before(t, pool, "c", func() {
		readableLog(t, a)
		pgTool(t, "pg_basebackup", "-h", a.Dir(), "-U", "postgres", "-D", backup, "-X", "stream", "-c", "fast")
	})
	n1.stop()
	pool.Close()
	a.Stop()

	// Archive recovery with an empty archive: replay what the backup
	// holds, then a new timeline.
	writeFile(t, filepath.Join(backup, "recovery.signal"), "")
	appendFile(t, filepath.Join(backup, "postgresql.auto.conf"), "restore_command = 'false'\n")
	giveToPostgres(t, backup)
	b := throwaway(t, backup, nil)
	waitPrimary(t, b.URL("app"))

	n2 := startNodeOn(t, b.URL("app"))
	pool2 := openPool(t, b.URL("app"))
	publish(t, pool2, "c", 1, newOnFork)
	resumeAfterFork(t, n2, pool2, held, "c")
}

// TestForkReplicaPromoted: a streaming replica made with pg_basebackup
// follows the primary up to 53 and is cut off; the primary commits on to
// 103 and dies; the replica is promoted without those commits.
func TestForkReplicaPromoted(t *testing.T) {
	root := tempRoot(t)
	a := throwaway(t, filepath.Join(root, "a"), nil)
	url := migrated(t, a, "app")
	n1 := startNodeOn(t, url)
	pool := openPool(t, url)
	replicaDir := filepath.Join(root, "b")
	held := before(t, pool, "c", func() {
		readableLog(t, a)
		pgTool(t, "pg_basebackup", "-h", a.Dir(), "-U", "postgres", "-D", replicaDir, "-X", "stream", "-c", "fast", "-R")
		giveToPostgres(t, replicaDir)
		r := throwaway(t, replicaDir, map[string]string{"hot_standby": "on"})
		// The replica streams from the primary: wait until it has replayed
		// everything up to here, then cut it off.
		rp := openPool(t, r.URL("app"))
		var lsn string
		if err := pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var caught bool
			err := rp.QueryRow(context.Background(), `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&caught)
			if err == nil && caught {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica did not replay up to %s within 30 s: %v", lsn, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		rp.Close()
		r.Stop()
	})
	n1.stop()
	pool.Close()
	a.Stop()

	b := throwaway(t, replicaDir, map[string]string{"hot_standby": "on"})
	bp := openPool(t, b.URL("app"))
	var head int64
	if err := bp.QueryRow(context.Background(), `SELECT last_seq FROM herald.sequencer_state`).Scan(&head); err != nil || head != forkAt {
		t.Fatalf("replica head %d, %v; want %d", head, err, forkAt)
	}
	if _, err := bp.Exec(context.Background(), `SELECT pg_promote(true, 60)`); err != nil {
		t.Fatal(err)
	}
	waitPrimary(t, b.URL("app"))

	n2 := startNodeOn(t, b.URL("app"))
	publish(t, bp, "c", 1, newOnFork)
	resumeAfterFork(t, n2, bp, held, "c")
}

// waitPrimary waits until the server at url has left recovery.
func waitPrimary(t *testing.T, url string) {
	t.Helper()
	pool := openPool(t, url)
	defer pool.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rec bool
		err := pool.QueryRow(context.Background(), `SELECT pg_is_in_recovery()`).Scan(&rec)
		if err == nil && !rec {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still in recovery after 60 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readableLog lets the server read the log file the test process created in
// its data directory (as root, for a server running as postgres), which
// pg_basebackup copies with the rest.
func readableLog(t *testing.T, c *embedpg.Cluster) {
	t.Helper()
	if err := os.Chmod(filepath.Join(c.Dir(), "postgres.log"), 0o644); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestForkStateWentBack: the database goes back under a running herald
// (the log and the sequencer's state rewound to 53, as a restore in place
// would leave them, identity unchanged). The sequencer, reconnecting,
// finds a head below the one it saw and starts a new epoch; the feed ends
// the subscriptions it had (their positions name events that are gone);
// a client resuming at 103 gets a reset, then every new notice.
func TestForkStateWentBack(t *testing.T) {
	n, pool, _ := setup(t)
	ctx := context.Background()
	held := before(t, pool, "c", func() {})
	waitFeed(t, n, clientAt)
	live, err := n.feed.SubscribeAt(ctx, []string{"c"}, held, true)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	_, err = pool.Exec(ctx, `
		WITH d AS (DELETE FROM herald.event_log WHERE seq > $1)
		UPDATE herald.sequencer_state SET last_seq = $1`, forkAt)
	if err != nil {
		t.Fatal(err)
	}
	// The sequencer's connection drops (as it does when a database is
	// restored under it) and it comes back.
	cut := time.Now()
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-live.Done():
		t.Logf("the live subscription ended %v after the connections were cut", time.Since(cut).Round(time.Millisecond))
		if err := live.Err(); !errors.Is(err, herald.ErrEpochChanged) {
			t.Fatalf("live subscription ended with %v, want ErrEpochChanged", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the live subscription at 103 was not ended after the log went back")
	}
	publish(t, pool, "c", 1, newOnFork)
	resumeAfterFork(t, n, pool, held, "c")
}

// TestForkDumpRestoreNewCluster: the dump is restored into a new cluster,
// whose transaction ids are far below the ones the sequencer's stored
// snapshot names. New epoch (another system identifier), and the sequencer
// must go on numbering new notices instead of waiting for the new cluster's
// xids to pass the old ones.
func TestForkDumpRestoreNewCluster(t *testing.T) {
	root := tempRoot(t)
	a := throwaway(t, filepath.Join(root, "a"), nil)
	url := migrated(t, a, "app")
	n1 := startNodeOn(t, url)
	pool := openPool(t, url)
	// Move a's xid counter well past where a new cluster starts.
	if _, err := pool.Exec(context.Background(), `
		DO $$ BEGIN FOR i IN 1..3000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$`); err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(root, "app.dump")
	held := before(t, pool, "c", func() {
		pgTool(t, "pg_dump", "-h", a.Dir(), "-U", "postgres", "-d", "app", "-Fc", "-f", dump)
	})
	n1.stop()
	pool.Close()
	a.Stop()

	b := throwaway(t, filepath.Join(root, "b"), nil)
	if err := b.CreateDatabase(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	pgTool(t, "pg_restore", "-h", b.Dir(), "-U", "postgres", "-d", "app", dump)
	n2 := startNodeOn(t, b.URL("app"))
	pool2 := openPool(t, b.URL("app"))
	publish(t, pool2, "c", 1, newOnFork)
	resumeAfterFork(t, n2, pool2, held, "c")
}
