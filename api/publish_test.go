package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

const serverKey = "k-0123456789abcdef-0123456789abcdef"

func post(t *testing.T, base, key, body string) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Error.Code, raw
}

func TestPublishOverHTTP(t *testing.T) {
	env := apitest.Start(t, apitest.Options{API: api.Config{APIKeys: []string{"other-key-0000000000000000000000000", serverKey}}})
	big := `{"channel":"a","data":{"x":"` + strings.Repeat("y", 9000) + `"}}`
	cases := []struct {
		name, key, body string
		status          int
		code            string
	}{
		{"no key", "", `{"channel":"a","data":{}}`, 401, "api_key_required"},
		{"wrong key", "nope", `{"channel":"a","data":{}}`, 401, "invalid_api_key"},
		{"not JSON", serverKey, `{"channel":`, 400, "invalid_body"},
		{"empty", serverKey, ``, 400, "invalid_body"},
		{"empty list", serverKey, `[]`, 400, "invalid_body"},
		{"bad channel", serverKey, `{"channel":"a b","data":{}}`, 400, "invalid_channel"},
		{"no channel", serverKey, `{"data":{}}`, 400, "invalid_channel"},
		{"data not an object", serverKey, `{"channel":"a","data":[1]}`, 400, "invalid_data"},
		{"bad type", serverKey, `{"channel":"a","type":"x\ny","data":{}}`, 400, "invalid_type"},
		{"data over 8 KiB", serverKey, big, 413, "payload_too_large"},
		{"one bad in a batch", serverKey, `[{"channel":"a","data":{}},{"channel":"","data":{}}]`, 400, "invalid_channel"},
		{"one", serverKey, `{"channel":"a","type":"build.status","data":{"n":1}}`, 201, ""},
		{"array", serverKey, `[{"channel":"a","data":{"n":2}},{"channel":"b","data":{"n":3}}]`, 201, ""},
		{"wrapped", serverKey, `{"events":[{"channel":"a","data":{"n":4}}]}`, 201, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, code, raw := post(t, env.URL, c.key, c.body)
			if st != c.status || code != c.code {
				t.Fatalf("got %d %q (%s), want %d %q", st, code, raw, c.status, c.code)
			}
		})
	}
	// The four accepted events are in the log, in order, and nothing else.
	env.WaitHead(t, 4, 10*time.Second)
	resp, err := http.Get(env.URL + "/v1/poll?channel=a&channel=b&cursor=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Events []struct {
			Channel, Type string
			Data          map[string]int
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 4 {
		t.Fatalf("log holds %d events, want 4: %+v", len(page.Events), page.Events)
	}
	for i, e := range page.Events {
		if e.Data["n"] != i+1 {
			t.Fatalf("event %d is %+v", i, e)
		}
	}
	if page.Events[0].Type != "build.status" || page.Events[1].Type != "message" {
		t.Fatalf("types %q %q", page.Events[0].Type, page.Events[1].Type)
	}
}

func TestPublishDisabledWithoutKeys(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	if st, code, _ := post(t, env.URL, "anything", `{"channel":"a","data":{}}`); st != 404 || code != "publish_disabled" {
		t.Fatalf("got %d %q", st, code)
	}
}

func TestHistory(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	for i := 0; i < 5; i++ {
		env.Insert(t, "a", "message", `{"i":`+string(rune('0'+i))+`}`)
		env.Insert(t, "b", "message", `{}`)
	}
	env.WaitHead(t, 10, 10*time.Second)
	get := func(q string) (int, []string, string) {
		resp, err := http.Get(env.URL + "/v1/channels/a/events" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var page struct {
			Events []struct{ ID, Channel string }
			Cursor string
		}
		_ = json.NewDecoder(resp.Body).Decode(&page)
		// Ids and cursors are "<epoch>.<seq>"; compare the seqs.
		epoch := env.Feed.Epoch() + "."
		var ids []string
		for _, e := range page.Events {
			if e.Channel != "a" {
				t.Fatalf("history of a returned an event of %s", e.Channel)
			}
			if !strings.HasPrefix(e.ID, epoch) {
				t.Fatalf("id %q is not in epoch %q", e.ID, epoch)
			}
			ids = append(ids, strings.TrimPrefix(e.ID, epoch))
		}
		if page.Cursor != "" && !strings.HasPrefix(page.Cursor, epoch) {
			t.Fatalf("cursor %q is not in epoch %q", page.Cursor, epoch)
		}
		return resp.StatusCode, ids, strings.TrimPrefix(page.Cursor, epoch)
	}
	st, ids, cur := get("?limit=2")
	if st != 200 || strings.Join(ids, ",") != "1,3" || cur != "3" {
		t.Fatalf("first page: %d %v cursor %s", st, ids, cur)
	}
	st, ids, cur = get("?after=3&limit=10")
	if st != 200 || strings.Join(ids, ",") != "5,7,9" || cur != "10" {
		t.Fatalf("second page: %d %v cursor %s", st, ids, cur)
	}
	if st, _, _ := get("?limit=0"); st != 400 {
		t.Fatalf("limit=0: %d", st)
	}
	if st, _, _ := get("?after=x"); st != 400 {
		t.Fatalf("after=x: %d", st)
	}
}
