package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

var errClient = &http.Client{Timeout: 15 * time.Second}

// errorBody is the contract's error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Cursor string `json:"cursor"`
}

// expectError sends method url (with header) and fails t unless the answer
// is status with Content-Type application/json and the body
// {"error":{"code":code,"message":<non-empty>}} and nothing else (but a
// cursor on 410).
func expectError(t *testing.T, method, url string, header http.Header, status int, code string) errorBody {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := errClient.Do(req)
	if err != nil {
		t.Fatalf("%s %.120s: %v", method, url, err)
	}
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode != status {
		var snippet []byte
		if !strings.HasPrefix(ct, "text/event-stream") { // a stream would never end
			snippet, _ = io.ReadAll(io.LimitReader(resp.Body, 300))
		}
		t.Fatalf("%s %.120s: status %d (%s) %s, want %d %s", method, url, resp.StatusCode, ct, snippet, status, code)
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]json.RawMessage
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, raw)
	}
	for k := range shape {
		if k != "error" && !(k == "cursor" && status == http.StatusGone) {
			t.Errorf("unexpected top-level field %q in %s", k, raw)
		}
	}
	var inner map[string]any
	if err := json.Unmarshal(shape["error"], &inner); err != nil || len(inner) != 2 {
		t.Errorf(`"error" must be {"code","message"}, got %s`, shape["error"])
	}
	var b errorBody
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if b.Error.Code != code {
		t.Errorf("code %q, want %q (message %q)", b.Error.Code, code, b.Error.Message)
	}
	if strings.TrimSpace(b.Error.Message) == "" {
		t.Errorf("empty message in %s", raw)
	}
	return b
}

type badInput struct {
	name   string
	query  string // raw query string, sent as is
	lastID string // Last-Event-ID header, if any
	status int
	code   string
}

func channelList(n int, prefix, sep string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return strings.Join(parts, sep)
}

// channelInputs are bad for both endpoints.
func channelInputs() []badInput {
	long := strings.Repeat("a", 165)
	return []badInput{
		{"no query", "", "", 400, "no_channels"},
		{"no channel parameter", "_=1", "", 400, "no_channels"},
		{"unknown parameter", "channel=a&chanel=b", "", 400, "unknown_parameter"},
		{"misspelt cursor", "channel=a&last_event_id=4", "", 400, "unknown_parameter"},
		{"channel empty", "channel=", "", 400, "invalid_channel"},
		{"channels empty", "channels=", "", 400, "invalid_channel"},
		{"channels empty element", "channels=a,,b", "", 400, "invalid_channel"},
		{"space", "channel=a%20b", "", 400, "invalid_channel"},
		{"plus is a space", "channel=a+b", "", 400, "invalid_channel"},
		{"star", "channel=private-build-*", "", 400, "invalid_channel"},
		{"escaped star", "channel=build%2A", "", 400, "invalid_channel"},
		{"newline", "channel=a%0Ab", "", 400, "invalid_channel"},
		{"NUL", "channel=a%00b", "", 400, "invalid_channel"},
		{"non-ASCII", "channel=caf%C3%A9", "", 400, "invalid_channel"},
		{"invalid UTF-8", "channel=%FF%FE", "", 400, "invalid_channel"},
		{"slash", "channel=a%2Fb", "", 400, "invalid_channel"},
		{"165 chars", "channel=" + long, "", 400, "invalid_channel"},
		{"good then bad", "channel=ok&channel=not%20ok", "", 400, "invalid_channel"},
		{"101 channels", "channel=" + channelList(101, "c", "&channel="), "", 400, "too_many_channels"},
		{"101 channels in a list", "channels=" + channelList(101, "c", ","), "", 400, "too_many_channels"},
		{"101 channels mixed", "channels=" + channelList(60, "c", ",") + "&channel=" + channelList(41, "d", "&channel="), "", 400, "too_many_channels"},
		{"10 KB channel name", "channel=" + strings.Repeat("a", 10<<10), "", 400, "invalid_channel"},
		{"30 KB query", "channel=a&_=" + strings.Repeat("x", 30<<10), "", 414, "query_too_long"},
		{"one byte over the limit", "channel=a&_=" + strings.Repeat("x", api.MaxQueryBytes+1-len("channel=a&_=")), "", 414, "query_too_long"},
		// Go drops a query pair with a raw ';' or a bad %-escape; herald
		// must not silently subscribe to fewer channels than named.
		{"raw semicolon", "channel=a;b", "", 400, "invalid_query"},
		{"raw semicolon beside a good channel", "channel=ok&channel=a;b", "", 400, "invalid_query"},
		{"bad escape", "channel=%zz", "", 400, "invalid_query"},
		{"bad escape beside a good channel", "channel=ok&channel=a%2", "", 400, "invalid_query"},
	}
}

var badCursors = []string{
	"abc", "12abc", "-1", "-0", "+5", "1.5.5", "1e3", "0x10", "99999999999999999999",
	"9223372036854775808", "1 2", "1\t2",
	// "<epoch>.<seq>": the epoch is 1-16 of [a-z0-9], the seq a decimal.
	".5", "ab.", "Ab.5", "a-b.5", "abcdefghijklmnopq.5", "ab.-5", "ab.+5", "ab.5x", "ab.99999999999999999999", "ab..5",
}

func streamInputs() []badInput {
	var in []badInput
	for _, c := range badCursors {
		in = append(in,
			badInput{"Last-Event-ID " + c, "channel=a", c, 400, "invalid_cursor"},
			badInput{"lastEventId " + c, "channel=a&lastEventId=" + url.QueryEscape(c), "", 400, "invalid_cursor"})
	}
	for _, c := range []string{" 1", "1 ", " ", "\t7"} {
		in = append(in, badInput{fmt.Sprintf("lastEventId %q", c), "channel=a&lastEventId=" + url.QueryEscape(c), "", 400, "invalid_cursor"})
	}
	// The header wins over the query: a bad header is an error even with
	// a good ?lastEventId=.
	in = append(in, badInput{"bad header, good query", "channel=a&lastEventId=5", "x", 400, "invalid_cursor"})
	return in
}

func pollInputs() []badInput {
	var in []badInput
	for _, c := range append(badCursors, " 1", "1 ") {
		in = append(in, badInput{"cursor " + c, "channel=a&cursor=" + url.QueryEscape(c), "", 400, "invalid_cursor"})
	}
	for _, v := range []string{
		"0", "-1", "61", "3600", "abc", "1.5", "1s", "+5", " 5", "99999999999999999999",
		// 2^55+1 seconds: time.Duration(n)*time.Second wraps to exactly 1 s.
		"36028797018963969",
	} {
		in = append(in, badInput{"timeout " + v, "channel=a&cursor=0&timeout=" + url.QueryEscape(v), "", 400, "invalid_timeout"})
	}
	return in
}

func TestBadInput(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	for _, ep := range []struct {
		path   string
		inputs []badInput
	}{
		{"/v1/stream", append(channelInputs(), streamInputs()...)},
		{"/v1/poll", append(channelInputs(), pollInputs()...)},
	} {
		for _, in := range ep.inputs {
			t.Run(ep.path+"/"+in.name, func(t *testing.T) {
				u := env.URL + ep.path
				if in.query != "" {
					u += "?" + in.query
				}
				h := http.Header{}
				if in.lastID != "" {
					h.Set("Last-Event-ID", in.lastID)
				}
				expectError(t, http.MethodGet, u, h, in.status, in.code)
			})
		}
	}
}

// TestBadInputControls are the near misses that must be accepted, so the
// table above cannot pass by rejecting everything.
func TestBadInputControls(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	hundred := make([]string, 100)
	for i := range hundred {
		hundred[i] = fmt.Sprintf("%0164d", i) // 100 channels of 164 characters
	}
	full := "channel=" + strings.Join(hundred, "&channel=")
	type control struct {
		q     string
		paths []string
	}
	var controls []control
	both := []string{"/v1/poll", "/v1/stream"}
	for _, c := range []struct {
		q     string
		paths []string
	}{
		{"channel=a&lastEventId=", []string{"/v1/stream"}},
		{"channel=a&events=message&token=", []string{"/v1/stream"}},
		{"channel=a&cursor=&timeout=", []string{"/v1/poll"}},
		{"channel=a&cursor=0&timeout=1", []string{"/v1/poll"}},
		{"channel=a&cursor=000&timeout=01", []string{"/v1/poll"}},
	} {
		controls = append(controls, control{c.q, c.paths})
	}
	for _, q := range []string{
		"channel=a",
		"channels=a,b&channel=a",
		"channel=" + strings.Repeat("z", 164),
		"channel=a%3Bb", // an escaped ';' is legal
		"channel=A-Z_0-9%3D%40%2C.%3B",
		full, // 100 x 164 characters: about 17 KB, under the limit
		"channel=" + channelList(100, "c", "&channel=") + "&channel=c0", // 101 names, 100 distinct
		"channel=a&_=" + strings.Repeat("x", api.MaxQueryBytes-len("channel=a&_=")),
	} {
		controls = append(controls, control{q, both})
	}
	for _, c := range controls {
		q := c.q
		name := q
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			for _, path := range c.paths {
				req, _ := http.NewRequest(http.MethodGet, env.URL+path+"?"+q, nil)
				if path == "/v1/stream" {
					req.Header.Set("Last-Event-ID", " 3 ") // surrounding blanks are trimmed
				}
				resp, err := errClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
					t.Errorf("%s: status %d %s, want 200", path, resp.StatusCode, b)
				}
				resp.Body.Close() // a stream: headers are enough
			}
		})
	}
	if len(full) > api.MaxQueryBytes {
		t.Fatalf("100 channels of 164 characters take %d bytes, over MaxQueryBytes %d", len(full), api.MaxQueryBytes)
	}
}

// TestCursorAheadOfHead: a well-formed cursor past the log (a restored
// database) is 410 reset with the head, not a 400 and never a 500.
func TestCursorAheadOfHead(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	b := expectError(t, http.MethodGet, env.URL+"/v1/poll?channel=a&cursor=9223372036854775807&timeout=1", nil, http.StatusGone, "reset")
	if want := env.Feed.Epoch() + ".0"; b.Cursor != want {
		t.Errorf("reset cursor %q, want the head %q", b.Cursor, want)
	}
}

func TestUnknownRoutes(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nope", 404, "not_found"},
		{"GET", "/v1/streams?channel=a", 404, "not_found"},
		{"GET", "/v2/poll?channel=a", 404, "not_found"},
		{"POST", "/v1/stream?channel=a", 405, "method_not_allowed"},
		{"PUT", "/v1/stream", 405, "method_not_allowed"},
		{"DELETE", "/v1/poll?channel=a", 405, "method_not_allowed"},
		{"POST", "/readyz", 405, "method_not_allowed"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			expectError(t, c.method, env.URL+c.path, nil, c.status, c.code)
		})
	}
}
