package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald"
)

// MaxQueryBytes bounds the query string; 100 channels of 164 characters fit
// with room to spare.
const MaxQueryBytes = 24 << 10

// parseQuery parses a request's query string once, strictly: url.Values
// drops a pair it cannot parse (a raw ';', a bad %-escape), which would
// silently subscribe to fewer channels than the client named. Nothing is
// silently skipped. The handlers read every parameter from its result
// (checkParams, parseChannels, the cursor and the rest): a long-poll is one
// request per delivery, and three parses per request were 5% of herald's
// CPU in a profile of the longpoll benchmark (now two, with bearer's: 3%).
func parseQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("invalid_query", fmt.Sprintf("the query string is malformed (%v); percent-encode reserved characters, e.g. ; as %%3B and %% as %%25", err))
	}
	return q, nil
}

// parseChannels reads channel= (repeatable) and channels=a,b from q,
// validates and deduplicates them.
func parseChannels(q url.Values, max int) ([]string, error) {
	var raw []string
	raw = append(raw, q["channel"]...)
	for _, list := range q["channels"] {
		raw = append(raw, strings.Split(list, ",")...)
	}
	if len(raw) == 0 {
		return nil, badRequest("no_channels", "name at least one channel: ?channel=build-1 (repeatable) or ?channels=a,b")
	}
	seen := make(map[string]struct{}, len(raw))
	out := make([]string, 0, len(raw))
	for _, ch := range raw {
		if _, dup := seen[ch]; dup {
			continue
		}
		if err := herald.ValidateChannel(ch); err != nil {
			return nil, badRequest("invalid_channel", err.(*herald.InvalidError).Reason)
		}
		seen[ch] = struct{}{}
		out = append(out, ch)
		if len(out) > max {
			return nil, badRequest("too_many_channels", fmt.Sprintf("a connection may name at most %d channels; open another connection or use fewer", max))
		}
	}
	return out, nil
}

// parseCursor parses a cursor: "<epoch>.<seq>" as herald sends it, or a
// bare decimal seq from an older client (taken as the current epoch). ""
// means none.
func parseCursor(s, name string) (herald.Cursor, bool, error) {
	if s == "" {
		return herald.Cursor{}, false, nil
	}
	c, err := herald.ParseCursor(s)
	if err != nil {
		return herald.Cursor{}, false, badRequest("invalid_cursor", fmt.Sprintf("%s must be the id of the last event you received, \"<epoch>.<seq>\" (epoch: 1-16 of a-z 0-9, seq: a non-negative integer) or a bare non-negative integer (got %q)", name, truncate(s, 40)))
	}
	return c, true, nil
}

// streamCursor takes Last-Event-ID (browser reconnects) over ?lastEventId=
// (first connect, polyfills) from q, the request's parsed query.
func streamCursor(r *http.Request, q url.Values) (herald.Cursor, bool, error) {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return parseCursor(strings.TrimSpace(v), "Last-Event-ID")
	}
	return parseCursor(q.Get("lastEventId"), "lastEventId")
}

// parseTimeout parses the long-poll timeout in whole seconds, 1..max.
func parseTimeout(s string, def, max time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	// Compare in seconds: time.Duration(n)*time.Second overflows for
	// large n and could wrap into the accepted range.
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || !digits(s) || n < 1 || n > int64(max/time.Second) {
		return 0, badRequest("invalid_timeout", fmt.Sprintf("timeout must be a whole number of seconds from 1 to %d (got %q)", int(max/time.Second), truncate(s, 20)))
	}
	return time.Duration(n) * time.Second, nil
}

// digits reports whether s is only ASCII digits: no sign, no blanks, none
// of the other forms strconv accepts.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Query parameters each endpoint understands. "_" is the cache-buster some
// HTTP libraries and EventSource polyfills append.
var (
	streamParams  = []string{"channel", "channels", "lastEventId", "token", "events", "_"}
	pollParams    = []string{"channel", "channels", "cursor", "timeout", "token", "_"}
	historyParams = []string{"after", "limit", "token", "_"}
)

// checkParams rejects parameters the endpoint does not know: a typo such as
// ?chanel= or ?last_event_id= would otherwise be silently ignored and the
// client would wonder why it gets nothing, or everything.
func checkParams(q url.Values, known []string) error {
	for name := range q {
		if !slices.Contains(known, name) {
			return badRequest("unknown_parameter", fmt.Sprintf("unknown query parameter %q; this endpoint takes %s", truncate(name, 40), strings.Join(known[:len(known)-1], ", ")))
		}
	}
	return nil
}
