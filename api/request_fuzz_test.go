package api

import (
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-dev/herald"
)

const fuzzMaxChannels = 5 // small, so the fuzzer reaches the limit

var decimalRE = regexp.MustCompile(`^[0-9]+$`)

// checkError fails t unless err is a client error: an *Error with a 4xx
// status, one of codes, and a short, valid UTF-8 message (a 24 KB query
// must not be echoed back).
func checkError(t *testing.T, what string, err error, codes ...string) *Error {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("%s: error %T %v is not an *api.Error (it would be a 5xx)", what, err, err)
	}
	if ae.Status() < 400 || ae.Status() > 499 {
		t.Fatalf("%s: status %d for %v", what, ae.Status(), ae)
	}
	if !slices.Contains(codes, ae.Code) {
		t.Fatalf("%s: code %q, want one of %q (%s)", what, ae.Code, codes, ae.Message)
	}
	if strings.TrimSpace(ae.Message) == "" || len(ae.Message) > 512 || !utf8.ValidString(ae.Message) {
		t.Fatalf("%s: message %q", what, ae.Message)
	}
	return ae
}

// checkCursor checks a cursor parse of src (the string the parser saw)
// against an independent oracle: accepted iff src is empty (no cursor) or
// a decimal of digits only that fits in an int64, and then equal to it.
func checkCursor(t *testing.T, what, src string, cursor herald.Cursor, has bool, err error) {
	t.Helper()
	if src == "" {
		if err != nil || has || cursor != (herald.Cursor{}) {
			t.Fatalf("%s: empty cursor gave %v %v %v, want none", what, cursor, has, err)
		}
		return
	}
	epoch, num := "", src
	if m := cursorRE.FindStringSubmatch(src); m != nil {
		epoch, num = m[1], m[2]
	}
	want, ok := new(big.Int).SetString(num, 10)
	valid := cursorRE.MatchString(src) && ok && want.IsInt64()
	if !valid {
		if err == nil {
			t.Fatalf("%s: accepted %q as %v", what, src, cursor)
		}
		checkError(t, what, err, "invalid_cursor")
		return
	}
	if err != nil || !has || cursor.Seq != want.Int64() || cursor.Epoch != epoch || cursor.Seq < 0 {
		t.Fatalf("%s: %q gave %v %v %v, want %s.%s", what, src, cursor, has, err, epoch, want)
	}
}

// cursorRE is the documented cursor syntax: an optional epoch, then a seq.
var cursorRE = regexp.MustCompile(`^(?:([a-z0-9]{1,16})\.)?([0-9]+)$`)

// FuzzParseRequest feeds arbitrary query strings and Last-Event-ID headers
// to the request parsers the stream and poll handlers run before anything
// else. Invariants: no panic; every error is a 4xx *Error whose code is
// justified by the input; accepted channels are valid, distinct, 1..max,
// and exactly the channels named (none dropped); cursors and timeouts are
// accepted exactly when they are plain decimals in range.
func FuzzParseRequest(f *testing.F) {
	long := strings.Repeat("x", herald.MaxChannelLen+1)
	for _, s := range [][2]string{
		{"channel=a", ""},
		{"", ""},
		{"channel=a&channel=a&channels=a,b", "5"},
		{"channels=a,,b", ""},
		{"channels=a,b,c,d,e,f", "1.5"},
		{"channel=a&channel=b&channel=c&channel=d&channel=e&channel=a", "7"},
		{"channel=a;b", ""},
		{"channel=ok&channel=a;b", ""},
		{"channel=%zz", ""},
		{"channel=ok&channel=a%2", ""},
		{"channel=a%3Bb&lastEventId=7", ""},
		{"channel=A-Z_0-9%3D%40%2C.%3B", ""},
		{"channel=caf%C3%A9", " 12 "},
		{"channel=%FF%FE&lastEventId=%FF", "\xff"},
		{"channel=a+b", "\t1"},
		{"channel=a%00", "1\x002"},
		{"channel=a%0Ab&lastEventId=%0A1", "1 2"},
		{"channel=" + long, ""},
		{"channel=a&lastEventId=-0", ""},
		{"channel=a&lastEventId=+5", "-1"},
		{"channel=a&cursor=+5&timeout=+5", "+5"},
		{"channel=a&cursor=%2B5&timeout=%2B5&lastEventId=%2B5", ""},
		{"channel=a&cursor=-0&timeout=-0", "-0"},
		{"channel=a&timeout=36028797018963969", ""},
		{"channel=a&timeout=61&cursor=0x10", "0x10"},
		{"channel=a&timeout=060&cursor=00", "00"},
		{"channel=a&cursor=9223372036854775807", "9223372036854775808"},
		{"channel=a&cursor=99999999999999999999", "1_000"},
		{"channel=a&lastEventId=1%202&timeout=%205", "   "},
		{"channel=a&cursor=١٢", "١٢"}, // Arabic-Indic digits are not ASCII digits
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rawQuery, lastEventID string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/v1/stream", RawQuery: rawQuery}, Header: http.Header{}}
		if lastEventID != "" {
			r.Header["Last-Event-Id"] = []string{lastEventID}
		}
		q, qerr := url.ParseQuery(rawQuery)
		var named []string
		named = append(named, q["channel"]...)
		for _, l := range q["channels"] {
			named = append(named, strings.Split(l, ",")...)
		}

		var chans []string
		_, err := parseQuery(r)
		if err == nil {
			chans, err = parseChannels(q, fuzzMaxChannels)
		}
		if err != nil {
			ae := checkError(t, "parseChannels", err, "invalid_query", "no_channels", "invalid_channel", "too_many_channels")
			distinct := slices.Compact(slices.Sorted(slices.Values(named)))
			justified := map[string]bool{
				"invalid_query":     qerr != nil,
				"no_channels":       qerr == nil && len(named) == 0,
				"invalid_channel":   qerr == nil && slices.ContainsFunc(named, func(c string) bool { return herald.ValidateChannel(c) != nil }),
				"too_many_channels": qerr == nil && len(distinct) > fuzzMaxChannels,
			}
			if !justified[ae.Code] {
				t.Fatalf("parseChannels(%q): %s is not justified by the input", rawQuery, ae.Code)
			}
		} else {
			if qerr != nil {
				t.Fatalf("parseChannels(%q) accepted a query url.ParseQuery rejects (%v): %q", rawQuery, qerr, chans)
			}
			if len(chans) < 1 || len(chans) > fuzzMaxChannels {
				t.Fatalf("parseChannels(%q): %d channels", rawQuery, len(chans))
			}
			seen := map[string]bool{}
			for _, c := range chans {
				if err := herald.ValidateChannel(c); err != nil {
					t.Fatalf("parseChannels(%q) accepted %q: %v", rawQuery, c, err)
				}
				if seen[c] {
					t.Fatalf("parseChannels(%q): %q twice", rawQuery, c)
				}
				seen[c] = true
			}
			for _, c := range named {
				if !seen[c] {
					t.Fatalf("parseChannels(%q) dropped %q: got %q", rawQuery, c, chans)
				}
			}
			if len(seen) != len(slices.Compact(slices.Sorted(slices.Values(named)))) {
				t.Fatalf("parseChannels(%q) = %q, named %q", rawQuery, chans, named)
			}
		}
		// The handlers parse the rest only once parseChannels accepted the
		// query, but the parsers must be safe on any input.
		cursor, has, err := streamCursor(r, q)
		src := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
		if r.Header.Get("Last-Event-ID") == "" {
			src = r.URL.Query().Get("lastEventId")
		}
		checkCursor(t, "streamCursor", src, cursor, has, err)

		lq := r.URL.Query()
		cursor, has, err = parseCursor(lq.Get("cursor"), "cursor")
		checkCursor(t, "parseCursor", lq.Get("cursor"), cursor, has, err)

		const def, max = 25 * time.Second, 60 * time.Second
		ts := lq.Get("timeout")
		d, err := parseTimeout(ts, def, max)
		n, ok := new(big.Int).SetString(ts, 10)
		switch {
		case ts == "":
			if err != nil || d != def {
				t.Fatalf("parseTimeout(\"\") = %v, %v, want the default", d, err)
			}
		case decimalRE.MatchString(ts) && ok && n.Sign() > 0 && n.Cmp(big.NewInt(60)) <= 0:
			if err != nil || d != time.Duration(n.Int64())*time.Second {
				t.Fatalf("parseTimeout(%q) = %v, %v", ts, d, err)
			}
		default:
			if err == nil {
				t.Fatalf("parseTimeout(%q) accepted %v", ts, d)
			}
			checkError(t, "parseTimeout", err, "invalid_timeout")
		}
	})
}
