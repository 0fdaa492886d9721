package stream_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/herald-dev/herald/api/apitest"
)

// Every way a client can hold a cursor, on every endpoint: "<epoch>.<seq>"
// of the current epoch resumes; a bare decimal (an older client) is taken
// as the current epoch and resumes; a cursor of another epoch (a history
// the database no longer has) gets a reset to the head, never a replay by
// seq; no cursor gets the head, in the stream's opening block too.
func TestCursorEpochsOnEveryEndpoint(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	client := newRawClient(t)
	insertN(t, env, "a", "thing", 1, 5)
	env.WaitHead(t, 5, wait)
	e := env.Feed.Epoch()
	if e == "" {
		t.Fatal("no epoch")
	}
	other := "zz" + e[:3]
	if other == e {
		other = "yy" + e[:3]
	}

	t.Run("stream", func(t *testing.T) {
		for _, tc := range []struct {
			name, lastID string
			opening      string // "" = no id in the opening block
			reset        bool
		}{
			{"no cursor", "", e + ".5", false},
			{"current epoch", e + ".3", e + ".3", false},
			{"bare decimal", "3", e + ".3", false},
			{"another epoch", other + ".3", "", true},
			{"another epoch, ahead", other + ".99", "", true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var h http.Header
				if tc.lastID != "" {
					h = http.Header{"Last-Event-Id": {tc.lastID}}
				}
				s := openStream(t, client, env.URL, streamPath([]string{"a"}, ""), h)
				got := ""
				if s.first.hasID {
					got = s.first.epoch + "." + s.first.id
				}
				if got != tc.opening {
					t.Fatalf("opening block %q: id %q, want %q", s.first.raw, got, tc.opening)
				}
				if tc.reset {
					f := s.nextData(t)
					want := fmt.Sprintf("id: %s.5\nevent: reset\ndata: {\"cursor\":\"%s.5\"}\n", e, e)
					if f.raw != want {
						t.Fatalf("got %q, want %q", f.raw, want)
					}
					return
				}
				if tc.opening == e+".3" {
					for _, seq := range []string{"4", "5"} {
						if f := s.nextData(t); f.id != seq || f.epoch != e || f.event != "thing" {
							t.Fatalf("replay: got %q, want event %s.%s", f.raw, e, seq)
						}
					}
				}
			})
		}
	})

	get := func(t *testing.T, path string) (int, map[string]any) {
		t.Helper()
		resp, err := client.Get(env.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("%s: %s", path, b)
		}
		return resp.StatusCode, body
	}
	ids := func(body map[string]any) []string {
		var out []string
		events, _ := body["events"].([]any)
		for _, ev := range events {
			out = append(out, ev.(map[string]any)["id"].(string))
		}
		return out
	}
	for _, ep := range []struct{ name, path, param string }{
		{"poll", "/v1/poll?channel=a&timeout=1", "cursor"},
		{"history", "/v1/channels/a/events?limit=10", "after"},
	} {
		t.Run(ep.name, func(t *testing.T) {
			for _, c := range []string{e + ".3", "3"} {
				st, body := get(t, ep.path+"&"+ep.param+"="+c)
				if got := fmt.Sprint(st, " ", ids(body), " ", body["cursor"]); got != fmt.Sprintf("200 [%s.4 %s.5] %s.5", e, e, e) {
					t.Errorf("%s=%s: %s", ep.param, c, got)
				}
			}
			for _, c := range []string{other + ".3", other + ".99"} {
				st, body := get(t, ep.path+"&"+ep.param+"="+c)
				code := ""
				if er, ok := body["error"].(map[string]any); ok {
					code, _ = er["code"].(string)
				}
				if st != http.StatusGone || code != "reset" || body["cursor"] != e+".5" {
					t.Errorf("%s=%s: %d %v, want 410 reset with cursor %s.5", ep.param, c, st, body, e)
				}
			}
		})
	}
	t.Run("poll without cursor", func(t *testing.T) {
		st, body := get(t, "/v1/poll?channel=a")
		if st != 200 || body["cursor"] != e+".5" {
			t.Errorf("%d %v, want the head %s.5", st, body, e)
		}
	})
}
