package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/store"
)

// writeLoad runs writers concurrent writers for each of rounds transactions:
// some held open for tens of ms, some rolled back, some taking their xid
// early, some writing several rows. It returns the payloads committed.
func writeLoad(t *testing.T, ctx context.Context, pool *pgxpool.Pool, writers, rounds int, channels []string) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	committed := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; i < rounds; i++ {
				rows := 1 + r.IntN(3)
				var ids []string
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if r.IntN(4) == 0 {
						// Take the xid first, insert later: the row's xid is
						// older than rows committed meanwhile.
						if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
							return err
						}
					}
					for k := 0; k < rows; k++ {
						id := fmt.Sprintf(`{"w": %d, "i": %d, "k": %d}`, w, i, k)
						ch := channels[r.IntN(len(channels))]
						if _, err := tx.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ($1, $2)`, ch, id); err != nil {
							return err
						}
						ids = append(ids, id)
					}
					if r.IntN(5) == 0 {
						time.Sleep(time.Duration(10+r.IntN(60)) * time.Millisecond) // held open
					}
					if r.IntN(8) == 0 {
						return errRollback
					}
					return nil
				})
				if err == errRollback {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, id := range ids {
					committed[id] = true
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	return normalize(t, pool, committed)
}

var errRollback = fmt.Errorf("rollback on purpose")

// normalize maps payloads to jsonb's canonical text, as the feed returns it.
func normalize(t *testing.T, pool *pgxpool.Pool, in map[string]bool) map[string]bool {
	t.Helper()
	out := make(map[string]bool, len(in))
	for id := range in {
		var s string
		if err := pool.QueryRow(context.Background(), `SELECT $1::jsonb::text`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		out[s] = true
	}
	return out
}

func TestConcurrentWritersExactlyOnceInOrder(t *testing.T) {
	n, pool, _ := setup(t)
	ctx := context.Background()
	channels := []string{"a", "b", "c", "d"}
	sub, err := n.feed.Subscribe(ctx, channels, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	committed := writeLoad(t, ctx, pool, 16, 60, channels)
	got := collect(t, sub, len(committed), 60*time.Second)
	checkExactlyOnce(t, got, committed)
	// seq is dense across all channels: one subscriber on every channel
	// sees 1, 2, 3, ...
	for i, ev := range got {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: not dense", i, ev.Seq)
		}
	}
	// And the log itself holds nothing else.
	var count, maxSeq int64
	pool.QueryRow(ctx, `SELECT count(*), coalesce(max(seq),0) FROM herald.event_log`).Scan(&count, &maxSeq)
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
	want := `{"id":"1","channel":"build-1","type":"build-state-changed","data":{"build":1,"state":"STARTED"},"at":"`
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
	committed := writeLoad(t, ctx, pool, 8, 60, channels)
	close(stop)
	kills := <-killed
	got := collect(t, sub, len(committed), 60*time.Second)
	checkExactlyOnce(t, got, committed)
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
	committed := writeLoad(t, ctx, pool, 4, 25, []string{"c"})
	checkExactlyOnce(t, collect(t, subA, len(committed), 30*time.Second), committed)
	checkExactlyOnce(t, collect(t, subB, len(committed), 30*time.Second), committed)

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
