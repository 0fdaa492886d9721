package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/herald-dev/herald"
)

// FuzzDecodePublish: any POST /v1/events body either decodes into events
// that each pass the database's own rules, or is refused with a 4xx
// *Error or *herald.InvalidError; never a panic, never half-valid events.
// The events accepted are exactly the body's, in its order: each one's
// channel, type (default "message") and data bytes (default {}) are read
// from the body again by an independent walk of its JSON (bodyEvents), so
// a decoder that drops, adds, reorders or alters events fails.
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
		`{"events":[{"channel":"a","data":{"x":1}},{"channel":"b","type":"t","data":{"y":2}}]}`,
		`{"Channel":"a","data":{},"channel":"b","TYPE":"u"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		events, err := decodePublish(r)
		if err != nil {
			var ae *Error
			var inv *herald.InvalidError
			switch {
			case errors.As(err, &ae):
				if ae.Status() < 400 || ae.Status() > 499 || ae.Code == "" || ae.Message == "" {
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
		want, err := bodyEvents(body)
		if err != nil {
			t.Fatalf("accepted %q, which the oracle cannot read: %v", body, err)
		}
		if len(want) != len(events) {
			t.Fatalf("accepted %d events from %q, the body has %d", len(events), body, len(want))
		}
		for i, e := range events {
			w := want[i]
			if e.Channel != w.Channel || e.Type != w.Type || !bytes.Equal(e.Data, w.Data) {
				t.Fatalf("event %d accepted as %q %q %s; the body says %q %q %s (body %q)",
					i, e.Channel, e.Type, e.Data, w.Channel, w.Type, w.Data, body)
			}
		}
	})
}

// bodyEvents reads the events of a publish body without decodePublish's
// code: an array of event objects, an object whose only member is an
// "events" array, or one event object. Member names must be exactly
// "channel", "type", "data" (and "events" on the wrapper), each at most
// once: anything else is not a body the oracle can read, so a decoder that
// accepted it fails the fuzz test. A missing or empty type is "message",
// missing data is {}.
func bodyEvents(body []byte) ([]herald.NewEvent, error) {
	body = bytes.TrimSpace(body)
	var list []json.RawMessage
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, err
		}
	} else {
		fields, err := oracleMembers(body, "channel", "type", "data", "events")
		if err != nil {
			return nil, err
		}
		if ev, ok := fields["events"]; ok {
			if len(fields) != 1 || !bytes.HasPrefix(bytes.TrimSpace(ev), []byte("[")) {
				return nil, fmt.Errorf("events wrapper with other members or no array: %q", body)
			}
			if err := json.Unmarshal(ev, &list); err != nil {
				return nil, err
			}
		} else {
			list = []json.RawMessage{body}
		}
	}
	out := make([]herald.NewEvent, len(list))
	for i, raw := range list {
		fields, err := oracleMembers(raw, "channel", "type", "data")
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		e := herald.NewEvent{Type: "message", Data: json.RawMessage("{}")}
		if v, ok := fields["channel"]; ok {
			if err := json.Unmarshal(v, &e.Channel); err != nil {
				return nil, err
			}
		}
		if v, ok := fields["type"]; ok {
			var typ string
			if err := json.Unmarshal(v, &typ); err != nil {
				return nil, err
			}
			if typ != "" {
				e.Type = typ
			}
		}
		if v, ok := fields["data"]; ok {
			e.Data = v
		}
		out[i] = e
	}
	return out, nil
}

// oracleMembers reads a JSON object's members, refusing a name that is not
// exactly one of names and a name given twice.
func oracleMembers(b []byte, names ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %q", b)
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name := tok.(string)
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("member %q is not one of %v", name, names)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("member %q twice", name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}
