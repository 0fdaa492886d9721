package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store/pgtest"
)

// sseNotice is one notice read off the wire: its id and data line.
type sseNotice struct {
	seq  int64
	data string
}

// readNotices reads raw SSE frames from body, sending every notice to out,
// until the body ends; it returns the last id seen.
func readNotices(body io.Reader, cursor int64, out func(sseNotice)) (int64, error) {
	br := bufio.NewReader(body)
	id, data := int64(-1), ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return cursor, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if id >= 0 {
				cursor = id
				if data != "" {
					out(sseNotice{id, data})
				}
			}
			id, data = -1, ""
		case strings.HasPrefix(line, "id:"):
			c, perr := herald.ParseCursor(strings.TrimSpace(line[3:]))
			if perr != nil {
				return cursor, fmt.Errorf("bad id line %q: %w", line, perr)
			}
			id = c.Seq
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimSpace(line[5:])
		case strings.HasPrefix(line, "event: reset"):
			return cursor, fmt.Errorf("reset: the whole history is retained, a reset is a bug")
		}
	}
}

// TestLoneHeraldSIGKILL: the only herald is SIGKILLed (frozen first, so
// committed rows wait unsequenced at the kill) while writers commit
// and it sequences; writers go on while none runs; a new herald on the same
// database picks up. No replica survives to take over, so this is the
// restart path alone: the log holds every committed notice exactly once
// (dense seqs, nothing from rolled-back transactions), and a raw SSE client
// that read through the kill and resumed from its last id on the new
// process got each of them exactly once, in order.
func TestLoneHeraldSIGKILL(t *testing.T) {
	dbURL := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	args := []string{"serve", "--listen", "127.0.0.1:0"}
	envs := []string{"DATABASE_URL=" + dbURL, "HERALD_LOG_LEVEL=warn"}
	first := startProc(t, args, envs...)

	// Writers: small transactions, one in five rolled back; every
	// committed payload is recorded. Errors come back on a channel.
	var mu sync.Mutex
	committed := map[string]bool{}
	stopWriting := make(chan struct{})
	writeErr := make(chan error, 4)
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := 0; ; i++ {
				select {
				case <-stopWriting:
					writeErr <- nil
					return
				default:
				}
				var ids []string
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					for k := range 2 {
						id := fmt.Sprintf(`{"i":%d,"k":%d,"w":%d}`, i, k, w)
						if _, err := tx.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ('lone', $1)`, id); err != nil {
							return err
						}
						ids = append(ids, id)
					}
					if i%5 == 4 {
						return errRollback
					}
					return nil
				})
				if err == errRollback {
					continue
				}
				if err != nil {
					writeErr <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				mu.Lock()
				for _, id := range ids {
					committed[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(committed) }

	// The client reads from the start through the kill.
	var gotMu sync.Mutex
	var got []sseNotice
	collect := func(n sseNotice) { gotMu.Lock(); got = append(got, n); gotMu.Unlock() }
	resp, err := openStream(ctx, http.DefaultClient, first.URL, "lone&events=message&lastEventId=0", 0)
	if err != nil {
		t.Fatal(err)
	}
	readDone := make(chan int64, 1)
	go func() {
		last, _ := readNotices(resp.Body, 0, collect)
		readDone <- last
	}()
	waitMetric(t, first.URL, "herald_log_head", 300)
	// Freeze herald and let the writers commit 100 more rows before the
	// kill, so it lands mid-load however well herald was keeping up (on a
	// busy machine the writers can stall long enough for it to catch up,
	// and the check below failed). A step already sent when it froze can
	// still commit, but only rows committed before it started.
	if err := first.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for atStop := count(); count() < atStop+100; {
		select {
		case err := <-writeErr:
			t.Fatalf("writers stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	first.signal(t, syscall.SIGKILL, 10*time.Second)
	atKill := count()
	var last int64
	select {
	case last = <-readDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end within 30 s of SIGKILL")
	}
	var seqAtKill int64
	if err := pool.QueryRow(ctx, `SELECT last_seq FROM herald.sequencer_state`).Scan(&seqAtKill); err != nil {
		t.Fatal(err)
	}
	if int64(atKill) <= seqAtKill {
		t.Fatalf("the kill was not mid-load: %d committed, %d sequenced", atKill, seqAtKill)
	}
	// Writes go on with no herald running.
	for count() < atKill+200 {
		select {
		case err := <-writeErr:
			t.Fatalf("writers stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	second := startProc(t, args, envs...)
	resp2, err := openStream(ctx, http.DefaultClient, second.URL, "lone&events=message", last)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		l, _ := readNotices(resp2.Body, last, collect)
		readDone <- l
	}()
	waitMetric(t, second.URL, "herald_log_head", float64(count()+100))
	close(stopWriting)
	writers.Wait()
	for range 4 {
		if err := <-writeErr; err != nil {
			t.Fatal(err)
		}
	}
	total := int64(count())
	waitHead(t, second.URL, total)
	t.Logf("killed at log seq %d with %d committed; %d committed in all; the client had read up to %d before the kill",
		seqAtKill, atKill, total, last)

	// The log: dense 1..total, every committed payload once.
	var n, maxSeq, distinct int64
	if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(max(seq), 0), count(DISTINCT data) FROM herald.event_log`).Scan(&n, &maxSeq, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != total || maxSeq != total || distinct != total {
		t.Fatalf("event_log: %d rows, max seq %d, %d distinct payloads; want %d of each", n, maxSeq, distinct, total)
	}
	// The client: once it has read up to the head, end its stream.
	deadline := time.Now().Add(60 * time.Second)
	for {
		gotMu.Lock()
		k := len(got)
		reached := k > 0 && got[k-1].seq >= total
		gotMu.Unlock()
		if reached || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	resp2.Body.Close()
	<-readDone
	gotMu.Lock()
	defer gotMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for i, nt := range got {
		if i > 0 && nt.seq <= got[i-1].seq {
			t.Fatalf("client: seq %d after %d", nt.seq, got[i-1].seq)
		}
		var ev struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(nt.data), &ev); err != nil {
			t.Fatalf("client: notice %d: %v", nt.seq, err)
		}
		id := compactJSON(ev.Data)
		if seen[id] {
			t.Fatalf("client: %s twice (seq %d)", id, nt.seq)
		}
		if !committed[id] {
			t.Fatalf("client: %s (seq %d) was never committed", id, nt.seq)
		}
		seen[id] = true
	}
	if int64(len(got)) != total {
		t.Fatalf("client got %d notices, want all %d committed", len(got), total)
	}
}

var errRollback = fmt.Errorf("roll back on purpose")
