package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/store/pgtest"
)

// rawStream reads one SSE response: the ids of notices (frames with data)
// and the last id: seen (the resume cursor).
type rawStream struct {
	ids     []int64
	cursor  int64
	retries int // retry: lines
}

func (s *rawStream) read(body io.Reader, until int64) error {
	br := bufio.NewReader(body)
	var id int64 = -1
	hasData := false
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
				}
			}
			id, hasData = -1, false
			if until > 0 && s.cursor >= until {
				return nil
			}
		case strings.HasPrefix(line, "id:"):
			c, err := store.ParseCursor(strings.TrimSpace(line[3:]))
			if err != nil || c.Epoch == "" {
				return fmt.Errorf("bad id line %q", line)
			}
			id = c.Seq
		case strings.HasPrefix(line, "data:"):
			hasData = true
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

// TestSIGTERMWithOpenClients: 1,000 streams and 1,000 waiting polls; the
// process exits within 5 s of SIGTERM, every stream got its retry hint and
// ended, every poll was answered; then every client resumes on a new
// process with nothing lost, including what was written while none ran.
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
	args := []string{"serve", "--listen", "127.0.0.1:0", "--shutdown-timeout", "4s"}
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

	took := p.signal(t, syscall.SIGTERM, 5*time.Second)
	t.Logf("exit %v after SIGTERM with %d streams and %d polls", took, clients, clients)
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
	var wg2 sync.WaitGroup
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
			var got []int64
			want := channelSeqs(t, pool, "p", 0)
			for cur := polls[i]; len(got) < len(want); {
				r := pollOnce(ctx, client, p2.URL, "p", cur, 5)
				if r.err != nil {
					errs2 <- r.err
					return
				}
				got = append(got, r.ids...)
				cur = r.cursor
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				errs2 <- fmt.Errorf("poll client %d got %v, want %v", i, got, want)
			}
		}()
	}
	wg2.Wait()
	close(errs2)
	for err := range errs2 {
		t.Fatal(err)
	}
	want := channelSeqs(t, pool, "s", 5)
	for i, s := range streams {
		if fmt.Sprint(s.ids) != fmt.Sprint(want) {
			t.Fatalf("stream %d got %v, want %v", i, s.ids, want)
		}
	}
}

// channelSeqs lists channel's seqs above after.
func channelSeqs(t *testing.T, pool *pgxpool.Pool, channel string, after int64) []int64 {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT seq FROM herald.event_log WHERE channel = $1 AND seq > $2 ORDER BY seq`, channel, after)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for rows.Next() {
		var s int64
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}
