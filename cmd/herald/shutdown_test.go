package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store/pgtest"
)

// rawStream reads one SSE response: the ids of notices (frames with data),
// their data lines and the last id: seen (the resume cursor).
type rawStream struct {
	ids     []int64
	data    []string // each notice's data: line, raw
	cursor  int64
	retries int // retry: lines
}

func (s *rawStream) read(body io.Reader, until int64) error {
	br := bufio.NewReader(body)
	var id int64 = -1
	hasData := false
	var data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if id >= 0 {
				s.cursor = id
				if hasData {
					s.ids = append(s.ids, id)
					s.data = append(s.data, data)
				}
			}
			id, hasData, data = -1, false, ""
			if until > 0 && s.cursor >= until {
				return nil
			}
		case strings.HasPrefix(line, "id:"):
			c, err := herald.ParseCursor(strings.TrimSpace(line[3:]))
			if err != nil || c.Epoch == "" {
				return fmt.Errorf("bad id line %q", line)
			}
			id = c.Seq
		case strings.HasPrefix(line, "data:"):
			hasData = true
			data = strings.TrimSpace(line[5:])
		case strings.HasPrefix(line, "retry:"):
			s.retries++
		}
	}
}

func openStream(ctx context.Context, client *http.Client, base, channel string, cursor int64) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream?channel="+channel, nil)
	if cursor > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(cursor, 10))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, fmt.Errorf("stream: status %d", resp.StatusCode)
	}
	return resp, nil
}

func insertN(t *testing.T, pool *pgxpool.Pool, channel string, n int) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO herald.events (channel, data) SELECT $1, jsonb_build_object('i', g) FROM generate_series(1, $2) g`, channel, n)
	if err != nil {
		t.Fatal(err)
	}
}

// TestSIGTERMWithOpenClients: 1,000 streams and 1,000 waiting polls; on
// SIGTERM the process drains them all by itself (no request is still
// running at its shutdown timeout) and exits, every stream got its retry
// hint and ended, every poll was answered; then every client resumes on a
// new process with nothing lost, including what was written while none
// ran: each gets exactly the payloads the test wrote, in order.
func TestSIGTERMWithOpenClients(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const clients = 1000
	url := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// The shutdown timeout is far above a drain's expected second or so,
	// so that a loaded machine cannot turn a slow drain into a forced
	// close; the check below is that it never came to one.
	args := []string{"serve", "--listen", "127.0.0.1:0", "--shutdown-timeout", "60s"}
	p := startProc(t, args, "DATABASE_URL="+url)
	insertN(t, pool, "s", 5)
	waitHead(t, p.URL, 5)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * clients}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	streams := make([]*rawStream, clients)
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	for i := range streams {
		// From cursor 5 (the head): a client always has a cursor to
		// resume from, even before its first notice.
		s := &rawStream{cursor: 5}
		streams[i] = s
		resp, err := openStream(ctx, client, p.URL, "s", 5)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			if err := s.read(resp.Body, 0); err != io.EOF {
				errs <- fmt.Errorf("stream ended with %v, want a clean end", err)
			}
		}()
	}
	polls := make([]int64, clients)
	for i := range polls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := pollOnce(ctx, client, p.URL, "p", 0, 25)
			if r.err != nil {
				errs <- r.err
				return
			}
			polls[i] = r.cursor
		}()
	}
	waitMetric(t, p.URL, `herald_connections{transport="sse"}`, clients)
	waitMetric(t, p.URL, "herald_polls_waiting", clients)

	// A drain takes about a second here on an idle machine; 90 s (over
	// 10x, and past the 60 s shutdown timeout) proves the process exits on
	// SIGTERM, not a speed. That it drained rather than gave up is the
	// functional check: no "still running at shutdown timeout" warning.
	took := p.signal(t, syscall.SIGTERM, 90*time.Second)
	t.Logf("exit %v after SIGTERM with %d streams and %d polls", took, clients, clients)
	if log := p.stderr.String(); strings.Contains(log, "still running at shutdown timeout") {
		t.Fatalf("shutdown did not drain the clients by itself; stderr:\n%s", log)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, s := range streams {
		if s.retries < 2 {
			t.Fatalf("stream %d saw %d retry: lines, want the first and the shutdown hint", i, s.retries)
		}
	}

	// Written while no herald runs; then a new process.
	insertN(t, pool, "s", 50)
	insertN(t, pool, "p", 50)
	p2 := startProc(t, args, "DATABASE_URL="+url)
	// Every client starts once the new process has sequenced all 105.
	waitPollHead(t, p2.URL, 105)
	var wg2 sync.WaitGroup
	var netRetries atomic.Int64
	errs2 := make(chan error, 2*clients)
	for i, s := range streams {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			resp, err := openStream(ctx, client, p2.URL, "s", s.cursor)
			if err != nil {
				errs2 <- err
				return
			}
			defer resp.Body.Close()
			if err := s.read(resp.Body, 55); err != nil {
				errs2 <- fmt.Errorf("stream %d resuming: %v", i, err)
			}
		}()
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			// Polls on until it has as many events as the test wrote to
			// "p" (or the context ends), then compares their payloads with
			// what the test wrote: an empty or short answer cannot pass.
			var got []string
			for cur := polls[i]; len(got) < 50; {
				r := pollOnce(ctx, client, p2.URL, "p", cur, 5)
				var ue *neturl.Error
				if errors.As(r.err, &ue) && ctx.Err() == nil {
					// No answer at all (a connection the loaded server
					// dropped): a real client polls again from the same
					// cursor, so what it receives is still checked below.
					netRetries.Add(1)
					continue
				}
				if r.err != nil {
					errs2 <- fmt.Errorf("poll client %d after %d events: %v", i, len(got), r.err)
					return
				}
				for _, e := range r.events {
					got = append(got, e.Channel+" "+string(e.Data))
				}
				cur = r.cursor
			}
			if want := wrotePayloads("p", 50); fmt.Sprint(got) != fmt.Sprint(want) {
				errs2 <- fmt.Errorf("poll client %d got %v, want %v", i, got, want)
			}
		}()
	}
	wg2.Wait()
	close(errs2)
	if n := netRetries.Load(); n > 0 {
		t.Logf("%d polls on the new process ended without an answer and were repeated", n)
	}
	for err := range errs2 {
		t.Fatal(err)
	}
	want := wrotePayloads("s", 50)
	for i, s := range streams {
		var got []string
		for _, d := range s.data {
			var e herald.Event
			if err := json.Unmarshal([]byte(d), &e); err != nil {
				t.Fatalf("stream %d: data %s: %v", i, d, err)
			}
			got = append(got, e.Channel+" "+string(e.Data))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("stream %d got %v (ids %v), want %v", i, got, s.ids, want)
		}
	}
}

// wrotePayloads is what insertN(channel, n) wrote, as "channel data" with
// data in the compact JSON herald serves.
func wrotePayloads(channel string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`%s {"i":%d}`, channel, i+1)
	}
	return out
}

// waitPollHead waits until base's log head, as a poll without a cursor
// answers it (what a client sees, not a metric), reaches seq.
func waitPollHead(t *testing.T, base string, seq int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c := poll(t, base, "channel=s").Cursor
		head, err := strconv.ParseInt(c[strings.LastIndex(c, ".")+1:], 10, 64) // <seq> or <epoch>.<seq>
		if err != nil {
			t.Fatalf("poll cursor %q: %v", c, err)
		}
		if head >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log head %d after 60 s, want %d", head, seq)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a readiness guess
	}
}
