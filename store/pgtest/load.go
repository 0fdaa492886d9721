package pgtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald"
)

var errRollback = errors.New("rollback on purpose")

// WriteLoad runs writers concurrent writers for rounds transactions each,
// inserting 1-3 rows per transaction on random channels, with the patterns
// that break naive cursors: some transactions take their xid early and
// insert later, some are held open for 10-70 ms, some roll back. It returns
// the payloads of the committed rows, exactly as the log returns them
// (jsonb's canonical text), so tests compare Event.Data against it.
func WriteLoad(t testing.TB, ctx context.Context, pool *pgxpool.Pool, writers, rounds int, channels []string) map[string]bool {
	t.Helper()
	committed, err := WriteLoadErr(ctx, pool, writers, rounds, channels)
	if err != nil {
		t.Fatal(err)
	}
	return committed
}

// WriteLoadErr is WriteLoad returning the first writer error instead of
// failing a test: a test that writes from its own goroutine (where
// t.Fatal must not be called) hands the error back to the test goroutine.
func WriteLoadErr(ctx context.Context, pool *pgxpool.Pool, writers, rounds int, channels []string) (map[string]bool, error) {
	var mu sync.Mutex
	committed := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; i < rounds; i++ {
				var ids []string
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					ids = ids[:0]
					if r.IntN(4) == 0 {
						// Take the xid first, insert later: the row's xid is
						// older than rows committed meanwhile.
						if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
							return err
						}
					}
					for k := range 1 + r.IntN(3) {
						// jsonb's canonical text, so no round trip is needed.
						id := fmt.Sprintf(`{"i": %d, "k": %d, "w": %d}`, i, k, w)
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
				if errors.Is(err, errRollback) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
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
	if err := <-errs; err != nil {
		return nil, err
	}
	return committed, nil
}

// CheckExactlyOnce fails unless got's seqs strictly increase and got holds
// exactly the payloads in want, each once.
//
// Payloads compare in compact form: the log returns jsonb's text (with
// spaces), the wire carries it compacted.
func CheckExactlyOnce(t testing.TB, got []*herald.Event, want map[string]bool) {
	t.Helper()
	compactWant := make(map[string]bool, len(want))
	for id := range want {
		compactWant[compact(id)] = true
	}
	want = compactWant
	seen := make(map[string]bool, len(got))
	for i, ev := range got {
		if i > 0 && ev.Seq <= got[i-1].Seq {
			t.Fatalf("out of order: seq %d after %d", ev.Seq, got[i-1].Seq)
		}
		id := compact(string(ev.Data))
		if seen[id] {
			t.Fatalf("duplicate %s at seq %d", id, ev.Seq)
		}
		seen[id] = true
		if !want[id] {
			t.Fatalf("unexpected event %s (seq %d): rolled back or never written", id, ev.Seq)
		}
	}
	missing := 0
	for id := range want {
		if !seen[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d committed events missing", missing, len(want))
	}
}

func compact(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s
	}
	return b.String()
}
