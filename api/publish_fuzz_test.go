package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/herald-dev/herald/store"
)

// FuzzDecodePublish: any POST /v1/events body either decodes into events
// that each pass the database's own rules, or is refused with a 4xx
// *Error or *store.InvalidError; never a panic, never half-valid events.
func FuzzDecodePublish(f *testing.F) {
	for _, seed := range []string{
		`{"channel":"a","type":"t","data":{"x":1}}`,
		`[{"channel":"a","data":{}},{"channel":"b","type":"x.y","data":{"n":[1,2]}}]`,
		`{"events":[{"channel":"a"}]}`,
		`{"channel":"a b","data":{}}`,
		`{"channel":"a","data":[1]}`,
		`{"channel":"a","data":"x"}`,
		`{"channel":"a","type":"a\nb","data":{}}`,
		`[]`, ``, `null`, `{`, `[{"channel":1}]`, `{"events":null,"channel":"a"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		events, err := decodePublish(r)
		if err != nil {
			var ae *Error
			var inv *store.InvalidError
			switch {
			case errors.As(err, &ae):
				if ae.Status < 400 || ae.Status > 499 || ae.Code == "" || ae.Message == "" {
					t.Fatalf("bad error %+v for %q", ae, body)
				}
			case errors.As(err, &inv):
				if inv.Reason == "" {
					t.Fatalf("empty reason for %q", body)
				}
			default:
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if len(events) == 0 || len(events) > MaxPublishBatch {
			t.Fatalf("%d events accepted from %q", len(events), body)
		}
		for _, e := range events {
			if err := e.Validate(); err != nil {
				t.Fatalf("accepted an invalid event %+v: %v", e, err)
			}
			var obj map[string]json.RawMessage
			if json.Unmarshal(e.Data, &obj) != nil {
				t.Fatalf("accepted data that is not a JSON object: %q", e.Data)
			}
		}
	})
}
