package longpoll_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// answer is one decoded GET /v1/poll response.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	At     time.Time // when the whole body had arrived

	// 200: {"events":[...],"cursor":"N"}
	Events []*herald.Event
	Cursor int64  // the seq of the answer's cursor
	Epoch  string // its epoch (also a 410's)

	// 4xx: {"error":{"code","message"}} (and "cursor" on 410)
	Code, Message string
	ErrCursor     *int64
}

func (a answer) seqs() []int64 {
	out := make([]int64, len(a.Events))
	for i, ev := range a.Events {
		out[i] = ev.Seq
	}
	return out
}

// pollURL builds /v1/poll with channel= for each channel; cursor and
// timeout are left out when empty.
func pollURL(base string, channels []string, cursor, timeout string) string {
	q := url.Values{}
	for _, ch := range channels {
		q.Add("channel", ch)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if timeout != "" {
		q.Set("timeout", timeout)
	}
	return base + "/v1/poll?" + q.Encode()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fetch does one GET and checks what every poll answer must have whatever
// its status: a JSON body of the documented shape and Cache-Control:
// no-store. It is safe to call from any goroutine.
func fetch(ctx context.Context, c *http.Client, u string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return answer{}, err
	}
	res, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, fmt.Errorf("read body: %w", err)
	}
	a := answer{Status: res.StatusCode, Header: res.Header, Body: body, At: time.Now()}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		return a, fmt.Errorf("status %d: Cache-Control %q, want no-store; body %s", a.Status, cc, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return a, fmt.Errorf("status %d: Content-Type %q, want application/json; body %s", a.Status, ct, body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if a.Status == http.StatusOK {
		var ok struct {
			Events []*herald.Event `json:"events"`
			Cursor *string         `json:"cursor"`
		}
		if err := dec.Decode(&ok); err != nil {
			return a, fmt.Errorf("decode 200 body %s: %w", body, err)
		}
		if ok.Events == nil || ok.Cursor == nil {
			return a, fmt.Errorf("200 body %s: want both \"events\" (a list, never null) and \"cursor\"", body)
		}
		c, err := herald.ParseCursor(*ok.Cursor)
		if err != nil || c.Epoch == "" {
			return a, fmt.Errorf("200 body %s: cursor %q is not \"<epoch>.<seq>\"", body, *ok.Cursor)
		}
		for _, ev := range ok.Events {
			if ev.Epoch != c.Epoch {
				return a, fmt.Errorf("200 body %s: event %d of epoch %q under cursor %q", body, ev.Seq, ev.Epoch, *ok.Cursor)
			}
		}
		a.Cursor, a.Epoch = c.Seq, c.Epoch
		a.Events = ok.Events
		return a, nil
	}
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Cursor *string `json:"cursor"`
	}
	if err := dec.Decode(&e); err != nil {
		return a, fmt.Errorf("decode %d body %s: %w", a.Status, body, err)
	}
	if e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		return a, fmt.Errorf("%d body %s: want {\"error\":{\"code\",\"message\"}} with both set", a.Status, body)
	}
	a.Code, a.Message = e.Error.Code, e.Error.Message
	if e.Cursor != nil {
		c, err := herald.ParseCursor(*e.Cursor)
		if err != nil || c.Epoch == "" {
			return a, fmt.Errorf("%d body %s: cursor %q is not \"<epoch>.<seq>\"", a.Status, body, *e.Cursor)
		}
		a.ErrCursor, a.Epoch = &c.Seq, c.Epoch
	}
	return a, nil
}

// mustFetch is fetch that fails t.
func mustFetch(t testing.TB, c *http.Client, u string) answer {
	t.Helper()
	a, err := fetch(context.Background(), c, u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return a
}

// mustPoll fetches and wants a 200.
func mustPoll(t testing.TB, c *http.Client, u string) answer {
	t.Helper()
	a := mustFetch(t, c, u)
	if a.Status != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200; body %s", u, a.Status, a.Body)
	}
	return a
}

// newClient is an HTTP client that keeps up to n connections to the
// server open at once (the default keeps 2 idle, which would make 1,000
// concurrent polls dial and close all the time).
func newClient(t testing.TB, n int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxConnsPerHost:     0, // no limit
		MaxIdleConns:        n,
		MaxIdleConnsPerHost: n,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// start runs a herald with metrics on, so tests can watch the handler
// through its hooks: longpoll.Hooks.Waiting drives herald_polls_waiting.
// The metrics replace opts.Feed's hooks (apitest wires them).
func start(t testing.TB, opts apitest.Options) *apitest.Env {
	t.Helper()
	if opts.API.Metrics == nil {
		opts.API.Metrics = api.NewMetrics()
	}
	return apitest.Start(t, opts)
}

var metricsClient = &http.Client{Timeout: 10 * time.Second}

// metric reads one series from env's /metrics, named as exposed, e.g.
// herald_connections{transport="poll"}; absent is 0.
func metric(t testing.TB, env *apitest.Env, series string) float64 {
	t.Helper()
	res, err := metricsClient.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, %v", res.StatusCode, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// waitMetric waits until series == want.
func waitMetric(t testing.TB, env *apitest.Env, series string, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := metric(t, env, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after %v, want %v", series, got, timeout, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitParked waits until exactly n polls wait in the handler: the
// Waiting hook runs when a poll has subscribed, found nothing to hand
// out, and is about to wait for an event, its timeout, shutdown or its
// client leaving.
func waitParked(t testing.TB, env *apitest.Env, n int, timeout time.Duration) {
	t.Helper()
	waitMetric(t, env, "herald_polls_waiting", float64(n), timeout)
}

// waitNoPolls waits until every poll handler has returned.
func waitNoPolls(t testing.TB, env *apitest.Env, timeout time.Duration) {
	t.Helper()
	waitMetric(t, env, `herald_connections{transport="poll"}`, 0, timeout)
}

// fanout is how many event-to-subscription hand-offs the feed has made,
// read once the feed has dispatched everything up to seq (the metric is
// updated right after the head moves).
func fanout(t testing.TB, env *apitest.Env, seq int64) float64 {
	t.Helper()
	env.WaitHead(t, seq, 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, env, "herald_log_head") < float64(seq) {
		if time.Now().After(deadline) {
			t.Fatalf("herald_log_head below %d after 30s", seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return metric(t, env, "herald_fanout_deliveries_total")
}

// result is one concurrent poll's answer or error.
type result struct {
	a   answer
	err error
}

// startPolls sends n polls of u concurrently; each answer (or error)
// arrives on the returned channel.
func startPolls(ctx context.Context, c *http.Client, n int, u string) <-chan result {
	out := make(chan result, n)
	for range n {
		go func() {
			a, err := fetch(ctx, c, u)
			out <- result{a, err}
		}()
	}
	return out
}

// collect receives n results within timeout.
func collect(t testing.TB, results <-chan result, n int, timeout time.Duration) []answer {
	t.Helper()
	out := make([]answer, 0, n)
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatalf("poll %d of %d: %v", len(out)+1, n, r.err)
			}
			out = append(out, r.a)
		case <-deadline:
			t.Fatalf("%d of %d polls answered within %v", len(out), n, timeout)
		}
	}
	return out
}

// raiseFDLimit makes room for need open files: each poll is a client and a
// server socket in this process.
func raiseFDLimit(t testing.TB, need uint64) {
	t.Helper()
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if r.Cur >= need {
		return
	}
	r.Cur = min(need, r.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur < need {
		t.Fatalf("open file limit %d (hard %d), need %d: raise it (ulimit -n) to run this test: %v", r.Cur, r.Max, need, err)
	}
}

// insertMany writes n events on channel in one transaction, in the order
// of i (1..n), and returns the head once the feed has delivered them. The
// test's earlier writes must have been sequenced (every helper waits).
func insertMany(t testing.TB, env *apitest.Env, channel string, n int) int64 {
	t.Helper()
	before := lastSeq(t, env)
	tag, err := env.Pool.Exec(context.Background(), `
		INSERT INTO herald.events (channel, type, data)
		SELECT $1, 'bulk', jsonb_build_object('i', i) FROM generate_series(1, $2::int) AS i`, channel, n)
	if err != nil || tag.RowsAffected() != int64(n) {
		t.Fatalf("insert %d events into %s: %v (%d rows)", n, channel, err, tag.RowsAffected())
	}
	return waitSequenced(t, env, before+int64(n))
}

// insertOne writes one event and returns its seq once the feed has it.
func insertOne(t testing.TB, env *apitest.Env, channel, data string) int64 {
	t.Helper()
	before := lastSeq(t, env)
	env.Insert(t, channel, "test", data)
	return waitSequenced(t, env, before+1)
}

func lastSeq(t testing.TB, env *apitest.Env) int64 {
	t.Helper()
	var head int64
	if err := env.Pool.QueryRow(context.Background(), `SELECT last_seq FROM herald.sequencer_state`).Scan(&head); err != nil {
		t.Fatalf("read head: %v", err)
	}
	return head
}

// waitSequenced waits until the log head reaches want and the feed has
// delivered it.
func waitSequenced(t testing.TB, env *apitest.Env, want int64) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for lastSeq(t, env) < want {
		if time.Now().After(deadline) {
			t.Fatalf("log head %d after 30s, want %d", lastSeq(t, env), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	env.WaitHead(t, want, 30*time.Second)
	return want
}

// logSeqs reads from the database the seqs on channels after cursor.
func logSeqs(t testing.TB, env *apitest.Env, channels []string, after int64) []int64 {
	t.Helper()
	rows, err := env.Pool.Query(context.Background(),
		`SELECT seq FROM herald.event_log WHERE channel = ANY($1) AND seq > $2 ORDER BY seq`, channels, after)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("read log: %v", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read log: %v", err)
	}
	return out
}

func equalSeqs(a, b []int64) bool { return slices.Equal(a, b) || (len(a) == 0 && len(b) == 0) }
