package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-dev/herald/api/apitest"
)

// 10,000 connect/disconnect cycles of every kind (live, replay cut off
// mid-stream, dropped before the body is read, reset, refused) leave no
// goroutine behind, on the server or in the client.
func TestStreamNoGoroutineLeak(t *testing.T) {
	const cycles, workers = 10_000, 4
	env := apitest.Start(t, apitest.Options{})
	insertN(t, env, "leak", "thing", 0, 5) // history for the replays
	client := newRawClient(t)

	// blocks reads n blank-line-terminated blocks from r.
	blocks := func(r *bufio.Reader, n int) error {
		for n > 0 {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if line == "\n" {
				n--
			}
		}
		return nil
	}
	cycle := func(i int) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		path, lastID, wantStatus, read := "/v1/stream?channel=leak", "", http.StatusOK, 1
		switch i % 5 {
		case 0: // live: the retry: block, then gone
		case 1: // replay, cut off after two of the five events
			lastID, read = "0", 3
		case 2: // gone before reading the body
			read = 0
		case 3: // cursor ahead of the log: reset
			lastID, read = "1000000", 2
		case 4: // refused before the stream starts
			path, wantStatus = "/v1/stream?channel=no+spaces", http.StatusBadRequest
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+path, nil)
		if err != nil {
			return err
		}
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != wantStatus {
			return fmt.Errorf("cycle %d: status %s", i, resp.Status)
		}
		if wantStatus != http.StatusOK {
			_, err := io.Copy(io.Discard, resp.Body) // the connection is reused
			return err
		}
		if err := blocks(bufio.NewReaderSize(resp.Body, 512), read); err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
		return nil
	}

	// Warm up, so lazily started goroutines (pool, transport) are counted
	// in the baseline.
	for i := range 10 {
		if err := cycle(i); err != nil {
			t.Fatal(err)
		}
	}
	client.CloseIdleConnections()
	before := settledGoroutines(t)

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < cycles; i += workers {
				if err := cycle(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	client.CloseIdleConnections()

	// Streams the clients left a moment ago may still be winding down.
	const slack = 3
	deadline := time.Now().Add(wait)
	n := runtime.NumGoroutine()
	for n > before+slack && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		client.CloseIdleConnections()
		n = runtime.NumGoroutine()
	}
	t.Logf("%d cycles in %v (%v each, %d workers); goroutines %d before, %d after", cycles, took.Round(time.Millisecond),
		(took / cycles).Round(time.Microsecond), workers, before, n)
	if n > before+slack {
		var buf bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Fatalf("%d goroutines after %d cycles, %d before:\n%s", n, cycles, before, buf.String())
	}
}

// settledGoroutines returns the goroutine count once it stops falling
// (connections closed a moment ago take their goroutines with them).
func settledGoroutines(t testing.TB) int {
	t.Helper()
	deadline := time.Now().Add(wait)
	n := runtime.NumGoroutine()
	for stable := 0; stable < 10 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if m := runtime.NumGoroutine(); m < n {
			n, stable = m, 0
		} else {
			stable++
		}
	}
	return n
}

// Drain (graceful shutdown) ends every open stream cleanly, each having
// been told when to come back. The streams are idle and nothing else ends
// an idle stream (no max lifetime; heartbeats keep it open), so each one
// ending within drainBound is Drain's doing: that is what the bound
// proves. A drain of 100 streams takes well under a second on an idle
// machine; drainBound is over 10x that on a loaded 2-core -race run.
func TestStreamDrainEndsOpenStreams(t *testing.T) {
	const drainBound = 30 * time.Second
	const n = 100
	env := apitest.Start(t, apitest.Options{})
	client := newRawClient(t)
	streams := make([]*rawStream, n)
	for i := range streams {
		// openStream checks that each began with its retry: block.
		streams[i] = openStream(t, client, env.URL, streamPath([]string{fmt.Sprintf("drain-%d", i%10)}, ""), nil)
	}
	start := time.Now()
	env.Server.Drain()
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() {
			select {
			case <-s.done:
			case <-time.After(drainBound - time.Since(start)):
				t.Errorf("stream %d still open %v after Drain", i, drainBound)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d streams ended %v after Drain", n, took.Round(time.Millisecond))
	for i, s := range streams {
		frames, err := s.ended(t, 10*time.Second) // it has ended: this only collects
		if err != io.EOF {
			t.Errorf("stream %d ended with %v, want a clean end", i, err)
		}
		// The parting retry: spreads the reconnects over 1-5 s.
		ms := -1
		if len(frames) == 1 && frames[0].raw == "retry: "+frames[0].retry+"\n" {
			ms, _ = strconv.Atoi(frames[0].retry)
		}
		if ms < 1000 || ms > 5000 {
			t.Errorf("stream %d ended with %+v, want one retry: block of 1000-5000 ms", i, frames)
		}
	}
}
