package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/store/pgtest"
)

func TestConcurrentWritersExactlyOnceInOrder(t *testing.T) {
	n, pool, _ := setup(t)
	ctx := context.Background()
	channels := []string{"a", "b", "c", "d"}
	sub, err := n.feed.Subscribe(ctx, channels, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	committed := pgtest.WriteLoad(t, ctx, pool, 16, 60, channels)
	got := collect(t, sub, len(committed), 60*time.Second)
	pgtest.CheckExactlyOnce(t, got, committed)
	// seq is dense across all channels: one subscriber on every channel
	// sees 1, 2, 3, ...
	for i, ev := range got {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: not dense", i, ev.Seq)
		}
	}
	// And the log itself holds nothing else.
	var count, maxSeq int64
	if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(max(seq),0) FROM herald.event_log`).Scan(&count, &maxSeq); err != nil {
		t.Fatalf("count event_log: %v", err)
	}
	if count != int64(len(committed)) || maxSeq != count {
		t.Fatalf("event_log has %d rows, max seq %d; want %d dense", count, maxSeq, len(committed))
	}
}

func TestInsertAppearsInLogQuickly(t *testing.T) {
	n, pool, _ := setup(t)
	ctx := context.Background()
	sub, err := n.feed.Subscribe(ctx, []string{"build-1"}, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel, type, data) VALUES ('build-1', 'build-state-changed', '{"build":1,"state":"STARTED"}')`); err != nil {
		t.Fatal(err)
	}
	got := collect(t, sub, 1, 10*time.Second)
	if got[0].Seq != 1 || got[0].Type != "build-state-changed" || got[0].Channel != "build-1" {
		t.Fatalf("got %+v", got[0])
	}
	want := `{"id":"` + n.feed.Epoch() + `.1","channel":"build-1","type":"build-state-changed","data":{"build":1,"state":"STARTED"},"at":"`
	if s := string(got[0].JSON()); len(s) < len(want) || s[:len(want)] != want {
		t.Fatalf("wire form %s, want prefix %s", s, want)
	}
}

// TestTerminatedBackendsLoseNothing kills the feed's LISTEN backend and the
// sequencer leader's backend again and again while writers run.
func TestTerminatedBackendsLoseNothing(t *testing.T) {
	n, pool, _ := setup(t)
	ctx := context.Background()
	channels := []string{"x", "y"}
	sub, err := n.feed.Subscribe(ctx, channels, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	stop := make(chan struct{})
	killed := make(chan int)
	go func() {
		kills := 0
		defer func() { killed <- kills }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			// Every herald backend except the pool's: the LISTEN
			// connection and the leader's dedicated connection.
			tag, err := pool.Exec(ctx, `
				SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND application_name = 'herald'
				  AND (query ILIKE '%LISTEN%' OR query ILIKE '%herald_log%' OR query ILIKE '%sequencer_state%' OR query ILIKE '%advisory%' OR query ILIKE '%event_log%')
				  AND pid <> pg_backend_pid()`)
			if err == nil {
				kills += int(tag.RowsAffected())
			}
		}
	}()
	committed := pgtest.WriteLoad(t, ctx, pool, 8, 60, channels)
	close(stop)
	kills := <-killed
	got := collect(t, sub, len(committed), 60*time.Second)
	pgtest.CheckExactlyOnce(t, got, committed)
	if kills < 4 {
		t.Fatalf("only %d backends terminated; the test did not disturb enough", kills)
	}
	t.Logf("%d events, %d backends terminated", len(committed), kills)
}

// TestTwoNodesOneSequences runs two stores on one database: exactly one is
// leader at a time, and both feeds deliver everything.
func TestTwoNodesOneSequences(t *testing.T) {
	a, pool, url := setup(t)
	b := startNode(t, url, store.FeedOptions{})
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for !(a.seq.Leader() || b.seq.Leader()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a.seq.Leader() == b.seq.Leader() {
		t.Fatalf("leaders: a=%v b=%v; want exactly one", a.seq.Leader(), b.seq.Leader())
	}
	subA, _ := a.feed.Subscribe(ctx, []string{"c"}, 0, true)
	subB, _ := b.feed.Subscribe(ctx, []string{"c"}, 0, true)
	committed := pgtest.WriteLoad(t, ctx, pool, 4, 25, []string{"c"})
	pgtest.CheckExactlyOnce(t, collect(t, subA, len(committed), 30*time.Second), committed)
	pgtest.CheckExactlyOnce(t, collect(t, subB, len(committed), 30*time.Second), committed)

	// Stop the leader: the other takes over and keeps sequencing.
	leader, other := a, b
	if b.seq.Leader() {
		leader, other = b, a
	}
	leader.stop()
	deadline = time.Now().Add(10 * time.Second)
	for !other.seq.Leader() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !other.seq.Leader() {
		t.Fatal("no takeover within 10s")
	}
	sub, _ := other.feed.Subscribe(ctx, []string{"c"}, 0, true)
	if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel) VALUES ('c')`); err != nil {
		t.Fatal(err)
	}
	got := collect(t, sub, len(committed)+1, 10*time.Second)
	if last := got[len(got)-1]; last.Seq != int64(len(committed)+1) {
		t.Fatalf("after takeover last seq %d, want %d", last.Seq, len(committed)+1)
	}
}

// TestStandbyWaitsOutStatementTimeouts: a standby waits for the leader lock
// in pg_advisory_lock; with a statement_timeout on the database the server
// cuts that wait short again and again, and the standby waits again, does
// not report an error, and takes over when the leader stops.
func TestStandbyWaitsOutStatementTimeouts(t *testing.T) {
	url := pgtest.URL(t)
	pool := openPool(t, url)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '200ms'); END $$`); err != nil {
		t.Fatal(err)
	}
	a := startNode(t, url, store.FeedOptions{})
	b := startNode(t, url, store.FeedOptions{})
	waitFor(t, 10*time.Second, "a leader", func() bool { return a.seq.Leader() || b.seq.Leader() })
	leader, standby := a, b
	if b.seq.Leader() {
		leader, standby = b, a
	}
	// Several timeouts' worth of waiting, seen from the database: the
	// standby's backend is in a lock wait, not trying and returning.
	var waits int
	for range 60 { // 3 s: waits of 200 ms, a second apart (Standby)
		time.Sleep(50 * time.Millisecond)
		var n int
		if err := pool.QueryRow(ctx, `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		waits += n
	}
	if waits == 0 {
		t.Fatal("no backend waiting for the advisory lock: the standby is not waiting in pg_advisory_lock")
	}
	if err := standby.seq.Err(); err != nil || standby.seq.Leader() {
		t.Fatalf("standby: leader %v, err %v; want a quiet standby", standby.seq.Leader(), err)
	}
	leader.stop()
	waitFor(t, 10*time.Second, "the standby to take over", standby.seq.Leader)
	sub, err := standby.feed.Subscribe(ctx, []string{"c"}, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel) VALUES ('c')`); err != nil {
		t.Fatal(err)
	}
	collect(t, sub, 1, 10*time.Second)
}
