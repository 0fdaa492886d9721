package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/store"
)

// One client of 1,000 on a channel stops reading. The hub never waits on
// it: the other 999 get every event, once and in order, while the stalled
// stream's socket is full and its write blocked; then it is evicted (its
// connection closed, herald_evictions_total counted) and the 999 go on.
//
// "Did not wait" is shown by construction, not by a clock. In phase 1 the
// stalled stream cannot end: its write deadline (WriteTimeout) is two
// minutes away, and the hub's stall clock has not even started, since its
// queue stays under MaxPending (the clock starts at overflow). So if
// delivery to the 999 depended on it, phase 1 would not finish before the
// test's deadline. Afterwards the stalled client reads what reached it:
// fewer events than phase 1 sent, so its writer really was blocked while
// the 999 got them all.
//
// The 999 can never be evicted, however slow the machine: each round of
// events is smaller than MaxPending and waits until the 999 have it, so
// their queues never overflow. That is also why StallTimeout can be short.
func TestStreamStalledClientDoesNotHoldUpTheOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	const (
		readers    = 999
		maxPending = 256
		// Phase 1: 128 events of 2 KiB, 256 KiB per stream: over three
		// times what the stalled stream's socket buffers hold (the
		// server's SO_SNDBUF is set to 32 KiB, which Linux doubles, and
		// the client's SO_RCVBUF to 4 KiB), and fewer than maxPending, so
		// the stalled stream's queue cannot overflow yet.
		bigEvents = 128
		bigPad    = 2048
		// Phase 2: rounds of small events until the eviction. A round is
		// under maxPending: the readers' queues cannot overflow.
		round     = 192
		maxRounds = 40
		// deliverWithin bounds each phase's wait for the 999: generous
		// for a loaded -race run, and well under WriteTimeout, so a
		// dispatcher that waited on the stalled stream could not be let
		// go by its write timing out before the test notices.
		deliverWithin = 45 * time.Second
	)
	needFDs(t, 2*(readers+1)+500) // both ends of every connection, Postgres, the test binary

	var evictions atomic.Int64
	evicted := make(chan struct{})
	metrics := api.NewMetrics()
	env := apitest.Start(t, apitest.Options{
		API: api.Config{
			Metrics: metrics,
			// The stalled stream's blocked write must not time out during
			// the test: only the hub may end it.
			WriteTimeout: 2 * time.Minute,
			Heartbeat:    time.Minute, // no pings among the events
		},
		Feed: store.FeedOptions{
			MaxPending:   maxPending,
			StallTimeout: time.Second,
			OnEvict: func() {
				if evictions.Add(1) == 1 {
					close(evicted)
				}
			},
		},
	})
	// Accepted sockets inherit the listener's SO_SNDBUF: the stalled
	// stream's writes block after a few events, not after megabytes of
	// autotuned buffer.
	smallSendBuffers(t, env.Listener)
	const channel = "fan"
	path := streamPath([]string{channel}, "")
	head0 := env.Feed.Head()

	t0 := time.Now()
	slow := openSlowStream(t, env.URL, path)
	prog := newProgress()
	fans := openFanReaders(t, env.URL, path, readers, head0, prog)
	scrapeEq(t, env.URL, map[string]float64{`herald_connections{transport="sse"}`: readers + 1})

	// Phase 1: big events, with the stalled stream's socket filling up.
	start := time.Now()
	opened := start.Sub(t0)
	head := insertPadded(t, env, channel, head0, bigEvents, bigPad)
	prog.waitAll(t, readers, head-head0, deliverWithin)
	phase1 := time.Since(start)
	if n := evictions.Load(); n != 0 {
		t.Fatalf("%d evictions during phase 1; the stalled stream cannot have overflowed yet", n)
	}
	// Still open: its stream has neither ended nor been counted out.
	scrapeEq(t, env.URL, map[string]float64{
		`herald_connections{transport="sse"}`: readers + 1,
		`herald_evictions_total`:              0,
	})

	// Phase 2: rounds of small events, each delivered to the 999, until
	// the stalled stream's queue overflows and StallTimeout later it is
	// evicted; then one more round.
	rounds := 0
	for last := false; !last; rounds++ {
		if rounds == maxRounds {
			t.Fatalf("stalled stream not evicted after %d rounds of %d events", rounds, round)
		}
		select {
		case <-evicted:
			last = true // one round after the eviction
		default:
		}
		head = insertPadded(t, env, channel, head, round, 16)
		prog.waitAll(t, readers, head-head0, deliverWithin)
	}

	phase2 := time.Since(start) - phase1
	// The server closed the stalled connection; it never got even phase
	// 1's events.
	n, err := slow.readToEnd(t, wait)
	if n >= bigEvents {
		t.Errorf("the stalled client got %d events (then %v): its writer was never blocked", n, err)
	}
	if evictions.Load() != 1 {
		t.Errorf("%d evictions, want 1", evictions.Load())
	}
	scrapeEq(t, env.URL, map[string]float64{
		`herald_connections{transport="sse"}`: readers,
		`herald_evictions_total`:              1,
	})
	for i, f := range fans {
		if got := f.last.Load(); got != head {
			t.Errorf("reader %d: last event %d, want %d", i, got, head)
		}
	}
	t.Logf("%d streams opened in %v; %d readers got %d events (phase 1: %d × %d B in %v; phase 2: %d rounds of %d in %v) while the stalled one got %d, then %v",
		readers+1, opened.Round(time.Millisecond), readers, head-head0, bigEvents, bigPad, phase1.Round(time.Millisecond),
		rounds, round, phase2.Round(time.Millisecond), n, err)
}

// needFDs makes sure the process may open n files, raising the soft limit
// if it must; it skips if the hard limit is lower.
func needFDs(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("needs %d file descriptors (a socket per end of each connection); the hard limit is %d", n, lim.Max)
	}
	old := lim.Cur
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lim.Cur = old
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	})
}

// insertPadded inserts n events on channel in one transaction, with data
// {"n": first.., "pad": pad bytes}, and returns the head after them:
// nothing else may be writing. It does not wait for the feed: whether the
// events get through is what the test checks on the readers.
func insertPadded(t testing.TB, env *apitest.Env, channel string, head int64, n, pad int) int64 {
	t.Helper()
	first := int(head) + 1
	if _, err := env.Pool.Exec(context.Background(), `
		INSERT INTO herald.events (channel, data)
		SELECT $1, jsonb_build_object('n', g, 'pad', repeat('x', $4))
		FROM generate_series($2::int, $3::int) g ORDER BY g`,
		channel, first, first+n-1, pad); err != nil {
		t.Fatalf("insert %d into %s: %v", n, channel, err)
	}
	return head + int64(n)
}

// progress counts the events all readers got, and tells a waiter when it
// moved.
type progress struct {
	events atomic.Int64
	moved  chan struct{}
	failed chan struct{}
	once   sync.Once
}

func newProgress() *progress {
	return &progress{moved: make(chan struct{}, 1), failed: make(chan struct{})}
}

func (p *progress) add() {
	p.events.Add(1)
	select {
	case p.moved <- struct{}{}:
	default:
	}
}

func (p *progress) fail() { p.once.Do(func() { close(p.failed) }) }

// waitAll waits until each of readers has got perEach events. Readers
// check order, gaps and duplicates, and stop counting on the first fault,
// so the total is readers × perEach only when each has exactly all.
func (p *progress) waitAll(t testing.TB, readers int, perEach int64, within time.Duration) {
	t.Helper()
	want := int64(readers) * perEach
	timer := time.NewTimer(within)
	defer timer.Stop()
	for p.events.Load() < want {
		select {
		case <-p.moved:
		case <-p.failed:
			t.FailNow() // the reader said why
		case <-timer.C:
			t.Fatalf("after %v the readers have %d of %d events (%d each): held up", within, p.events.Load(), want, perEach)
		}
	}
}

// fanReader is one reading client: raw HTTP/1.1 on its own connection,
// checking each event's id as it goes.
type fanReader struct {
	conn net.Conn
	body *bufio.Reader
	last atomic.Int64 // seq of the last event
}

// openFanReaders opens n streams on path, each starting at head, and reads
// them until the test ends, one goroutine each.
func openFanReaders(t *testing.T, base, path string, n int, head int64, prog *progress) []*fanReader {
	t.Helper()
	fans := make([]*fanReader, n)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for _, f := range fans {
			if f != nil {
				f.conn.Close()
			}
		}
		wg.Wait()
	})
	// Connect a few at a time; each returns after the opening block, so
	// its subscription is registered.
	var (
		open    sync.WaitGroup
		next    atomic.Int64
		openErr error
		errOnce sync.Once
	)
	for range 16 {
		open.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f, err := dialFan(base, path, head)
				if err != nil {
					errOnce.Do(func() { openErr = fmt.Errorf("stream %d: %w", i, err) })
					return
				}
				fans[i] = f
			}
		})
	}
	open.Wait()
	if openErr != nil {
		t.Fatal(openErr)
	}
	for i, f := range fans {
		wg.Go(func() {
			if err := f.read(prog); err != nil {
				t.Errorf("reader %d: %v", i, err)
				prog.fail()
			}
		})
	}
	return fans
}

// dialFan connects, sends the request and reads the response head and the
// opening block, which must start the stream at head.
func dialFan(base, path string, head int64) (*fanReader, error) {
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	f := &fanReader{conn: conn}
	conn.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4<<10), nil)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	f.body = bufio.NewReaderSize(resp.Body, 8<<10)
	var opening []string
	for {
		line, err := f.body.ReadString('\n')
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("opening block: %q, then %w", opening, err)
		}
		if line == "\n" {
			break
		}
		opening = append(opening, line)
	}
	if len(opening) != 2 || !strings.HasPrefix(opening[0], "retry: ") ||
		!strings.HasPrefix(opening[1], "id: ") || !strings.HasSuffix(opening[1], "."+strconv.FormatInt(head, 10)+"\n") {
		conn.Close()
		return nil, fmt.Errorf("opening block %q: want retry: and id: <epoch>.%d", opening, head)
	}
	conn.SetDeadline(time.Time{})
	f.last.Store(head)
	return f, nil
}

// read reads events until the connection ends, and fails on an event that
// is not the one after the last (a gap, a duplicate, out of order) or has
// no data. It returns nil when the test closed the connection.
func (f *fanReader) read(prog *progress) error {
	var (
		id      []byte
		hasData bool
	)
	for {
		line, err := f.body.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("after event %d: %w", f.last.Load(), err)
		}
		switch {
		case len(line) == 1: // the blank line ends the block
			if id == nil && !hasData {
				return fmt.Errorf("after event %d: empty block", f.last.Load())
			}
			c, err := herald.ParseCursor(string(id))
			if err != nil || !hasData {
				return fmt.Errorf("after event %d: block with id %q (%v), data %v", f.last.Load(), id, err, hasData)
			}
			if want := f.last.Load() + 1; c.Seq != want {
				return fmt.Errorf("event %d, want %d: a gap, a duplicate or out of order", c.Seq, want)
			}
			f.last.Store(c.Seq)
			prog.add()
			id, hasData = nil, false
		case bytes.HasPrefix(line, []byte("id: ")):
			id = append([]byte(nil), bytes.TrimSuffix(line[4:], []byte("\n"))...)
		case bytes.HasPrefix(line, []byte("data: {")):
			hasData = true
		}
	}
}

// scrapeEq waits until /metrics shows each of want, and fails if it does
// not within wait.
func scrapeEq(t *testing.T, base string, want map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got, err := apitest.Metrics(base)
		if err != nil {
			t.Fatal(err)
		}
		var off []string
		for name, v := range want {
			if got[name] != v {
				off = append(off, fmt.Sprintf("%s = %v, want %v", name, got[name], v))
			}
		}
		if len(off) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after %v: %s", wait, strings.Join(off, "; "))
		}
		time.Sleep(20 * time.Millisecond) // a gauge moves when a stream's goroutines end
	}
}
