package stream_test

// End-to-end tests of GET /v1/stream against a whole herald (sequencer,
// feed, HTTP API) on a real Postgres: shared helpers. The raw client here
// is deliberately not r3labs: it reads the bytes herald sends, so framing
// mistakes cannot be hidden by a forgiving parser.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// wait is how long a test waits for something that should happen at once.
const wait = 10 * time.Second

// sseFrame is one block of an event stream, up to its blank line.
type sseFrame struct {
	raw      string // the block's lines, each ending in "\n", without the blank line
	id       string // the seq part of the id
	epoch    string // the epoch part of the id
	hasID    bool
	event    string
	data     string
	hasData  bool
	retry    string
	comments []string
	at       time.Time // when the test read it
}

// parseFrames reads an event stream from r, sending each block on out,
// until r ends; it returns why (io.EOF for a clean end). A block cut off by
// the end of the stream is not sent.
func parseFrames(r io.Reader, out chan<- sseFrame) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var f sseFrame
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\n" {
			if f.raw != "" {
				f.at = time.Now()
				out <- f
			}
			f = sseFrame{}
			continue
		}
		f.raw += line
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, ":") {
			f.comments = append(f.comments, strings.TrimPrefix(line[1:], " "))
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			// Tests compare ids with seqs: id is the seq part of
			// "<epoch>.<seq>" and epoch the rest. An id without an epoch
			// (the old format) is kept marked so it matches no seq.
			f.id, f.hasID = "no-epoch:"+value, true
			if c, err := herald.ParseCursor(value); err == nil && c.Epoch != "" {
				f.id, f.epoch = strconv.FormatInt(c.Seq, 10), c.Epoch
			}
		case "event":
			f.event = value
		case "data":
			if f.hasData {
				f.data += "\n"
			}
			f.data += value
			f.hasData = true
		case "retry":
			f.retry = value
		}
	}
}

// rawStream is one GET /v1/stream read with net/http and parseFrames.
type rawStream struct {
	resp   *http.Response
	first  sseFrame // the retry: block, checked by openStream
	frames chan sseFrame
	done   chan struct{} // closed when the body ended; err says why
	err    error
	cancel context.CancelFunc
}

// newRawClient is a keep-alive client that shows the bytes as sent.
func newRawClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// openStream connects to path (e.g. "/v1/stream?channel=a") with header,
// checks the response headers and that the body starts with a retry-only
// block, and reads frames in the background until the test ends.
func openStream(t testing.TB, c *http.Client, base, path string, header http.Header) *rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	s := &rawStream{resp: resp, frames: make(chan sseFrame, 4096), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.done)
		s.err = parseFrames(resp.Body, s.frames)
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-s.done
	})
	s.first = s.next(t)
	// The opening block: retry:, then (unless a reset follows at once)
	// the position the stream starts from, "id: <epoch>.<seq>".
	want := "retry: " + s.first.retry + "\n"
	if s.first.hasID {
		if s.first.epoch == "" {
			t.Fatalf("GET %s: opening block %q: id is not \"<epoch>.<seq>\"", path, s.first.raw)
		}
		want += "id: " + s.first.epoch + "." + s.first.id + "\n"
	}
	if s.first.raw != want || s.first.retry == "" {
		t.Fatalf("GET %s: stream starts with %q, want a retry: block", path, s.first.raw)
	}
	return s
}

// next returns the next block, failing if none arrives within wait.
func (s *rawStream) next(t testing.TB) sseFrame {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case f := <-s.frames:
		return f
	case <-s.done:
		select {
		case f := <-s.frames:
			return f
		default:
		}
		t.Fatalf("stream ended (%v) while waiting for a block", s.err)
	case <-timer.C:
		t.Fatalf("no block within %v", wait)
	}
	return sseFrame{}
}

// nextData skips blocks without data (heartbeats) and returns the next one
// with data.
func (s *rawStream) nextData(t testing.TB) sseFrame {
	t.Helper()
	for {
		if f := s.next(t); f.hasData {
			return f
		}
	}
}

// close ends the request.
func (s *rawStream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// ended waits for the server to end the stream and returns the blocks that
// came before the end, and why it ended.
func (s *rawStream) ended(t testing.TB, within time.Duration) ([]sseFrame, error) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	var got []sseFrame
	for {
		select {
		case f := <-s.frames:
			got = append(got, f)
		case <-s.done:
			for {
				select {
				case f := <-s.frames:
					got = append(got, f)
				default:
					return got, s.err
				}
			}
		case <-timer.C:
			t.Fatalf("stream still open after %v", within)
		}
	}
}

// insertN inserts n events on channel in one transaction, with data
// {"n": first..first+n-1}, and returns the seqs they got, which it learns by
// waiting for the feed: nothing else may be writing.
func insertN(t testing.TB, env *apitest.Env, channel, typ string, first, n int) []int64 {
	t.Helper()
	head := env.Feed.Head()
	if _, err := env.Pool.Exec(context.Background(), `
		INSERT INTO herald.events (channel, type, data)
		SELECT $1, $2, jsonb_build_object('n', g) FROM generate_series($3::int, $4::int) g ORDER BY g`,
		channel, typ, first, first+n-1); err != nil {
		t.Fatalf("insert %d into %s: %v", n, channel, err)
	}
	env.WaitHead(t, head+int64(n), wait)
	seqs := make([]int64, n)
	for i := range seqs {
		seqs[i] = head + 1 + int64(i)
	}
	return seqs
}

var errCut = errors.New("test cut the connection")

func streamPath(channels []string, extra string) string {
	q := "/v1/stream?channels=" + strings.Join(channels, ",")
	if extra != "" {
		q += "&" + extra
	}
	return q
}
