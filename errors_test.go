package herald_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/herald-dev/herald"
)

// TestErrorOf: the core's error kinds map to their codes, and each code to
// the status clients have always seen for it.
func TestErrorOf(t *testing.T) {
	head := herald.Cursor{Epoch: "ab", Seq: 7}
	for _, tc := range []struct {
		err    error
		code   string
		status int
		known  bool
	}{
		{&herald.InvalidError{Field: "channel", Reason: "x"}, "invalid_channel", 400, true},
		{fmt.Errorf("event 2: %w", &herald.InvalidError{Field: "data", Reason: "x", TooLarge: true}), "payload_too_large", 413, true},
		{&herald.ResetError{Head: head}, "reset", 410, true},
		{fmt.Errorf("wrapped: %w", herald.ErrEpochChanged), "unavailable", 503, true},
		{herald.ErrStopped, "shutting_down", 503, true},
		{context.Canceled, "client_closed", 499, true},
		{&herald.Error{Code: "forbidden", Message: "no"}, "forbidden", 403, true},
		{fmt.Errorf("dial tcp: refused"), "unavailable", 503, false},
	} {
		e, known := herald.ErrorOf(tc.err)
		if e.Code != tc.code || e.Status() != tc.status || known != tc.known || e.Message == "" {
			t.Errorf("ErrorOf(%v) = %+v (status %d), known %v; want %s %d %v", tc.err, e, e.Status(), known, tc.code, tc.status, tc.known)
		}
	}
	if e, _ := herald.ErrorOf(&herald.ResetError{Head: head}); e.Cursor == nil || *e.Cursor != head {
		t.Errorf("reset without its cursor: %+v", e)
	}
	if s := herald.Status("no_such_code"); s != 500 {
		t.Errorf("unknown code: status %d, want 500", s)
	}
}

// TestResetMessage: the reset explanation is the one clients have seen,
// with the head to continue from.
func TestResetMessage(t *testing.T) {
	r := &herald.ResetError{Head: herald.Cursor{Epoch: "ab", Seq: 7}}
	want := "the history after this cursor is no longer retained, or is another history than the database's current one (restored or promoted); refetch your state and continue from cursor ab.7"
	if r.Error() != want {
		t.Errorf("got %q\nwant %q", r.Error(), want)
	}
}

// TestNewEventDefaults: Validate fills in the default type and data, the
// one place they are set.
func TestNewEventDefaults(t *testing.T) {
	e := herald.NewEvent{Channel: "a", Data: []byte("  ")}
	if err := e.Validate(); err != nil || e.Type != herald.DefaultType || string(e.Data) != "{}" {
		t.Fatalf("got %+v, %v", e, err)
	}
	e = herald.NewEvent{Channel: "a", Type: "t", Data: []byte(`{"x":1}`)}
	if err := e.Validate(); err != nil || e.Type != "t" || string(e.Data) != `{"x":1}` {
		t.Fatalf("got %+v, %v", e, err)
	}
}
