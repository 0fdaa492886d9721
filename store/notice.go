package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/herald-dev/herald"
)

// logNotice is a herald_log notice. The first line is the log's new head,
// "<epoch>.<seq>". The sequencer adds a second line when its batch fits in
// a notice (Postgres caps a payload below 8000 bytes):
//
//	{"floor":F,"events":[[seq,channel,type,data,at],...]}
//
// so a feed that is at the batch's first seq - 1 dispatches it without a
// query; any other feed reads the log as before. Notices arrive in commit
// order, and the sequencer is the only sender of batch lines.
type logNotice struct {
	head   herald.Cursor
	floor  int64
	events []*herald.Event // nil: head only
}

// parseLogNotice decodes a herald_log payload. A batch line that does not
// decode is an error: the caller reads the log instead.
func parseLogNotice(payload string) (logNotice, error) {
	first, rest, hasBatch := strings.Cut(payload, "\n")
	head, err := herald.ParseCursor(first)
	if err != nil {
		return logNotice{}, fmt.Errorf("log notice head %q: %w", first, err)
	}
	n := logNotice{head: head}
	if !hasBatch {
		return n, nil
	}
	var body struct {
		Floor  int64             `json:"floor"`
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal([]byte(rest), &body); err != nil {
		return logNotice{}, fmt.Errorf("log notice batch: %w", err)
	}
	if len(body.Events) == 0 {
		return logNotice{}, fmt.Errorf("log notice batch: no events")
	}
	n.floor = body.Floor
	n.events = make([]*herald.Event, len(body.Events))
	for i, raw := range body.Events {
		e := &herald.Event{Epoch: head.Epoch}
		var at time.Time
		if err := json.Unmarshal(raw, &[]any{&e.Seq, &e.Channel, &e.Type, &e.Data, &at}); err != nil {
			return logNotice{}, fmt.Errorf("log notice event %d: %w", i, err)
		}
		e.At = at
		n.events[i] = e
	}
	// The batch is consecutive and ends at the head; anything else is a
	// notice this code does not understand.
	for i, e := range n.events {
		if e.Seq != head.Seq-int64(len(n.events)-1-i) || e.Channel == "" || e.Type == "" || len(e.Data) == 0 {
			return logNotice{}, fmt.Errorf("log notice event %d: seq %d, channel %q, type %q do not follow head %d", i, e.Seq, e.Channel, e.Type, head.Seq)
		}
	}
	return n, nil
}
