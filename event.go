package herald

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Event is one sequenced notice from herald.event_log. Seq is the cursor:
// dense and increasing across all channels, in commit order.
type Event struct {
	// Epoch is the history Seq belongs to; the wire id is "<epoch>.<seq>".
	Epoch   string
	Seq     int64
	Channel string
	Type    string
	Data    json.RawMessage
	At      time.Time

	// wire is the JSON object sent to clients, encoded once when the feed
	// loads the event so fan-out to thousands of subscribers costs no
	// per-subscriber encoding.
	wire []byte
}

// wireEvent is the client-facing shape: the SSE data line and each element of
// a long-poll response. The id is a string so JavaScript never rounds it.
type wireEvent struct {
	ID      string          `json:"id"`
	Channel string          `json:"channel"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
	At      time.Time       `json:"at"`
}

// JSON returns the event's wire encoding, computing it on first use. The
// feed calls it before fan-out, so concurrent readers only ever read it.
func (e *Event) JSON() []byte {
	if e.wire == nil {
		e.wire = e.encode()
	}
	return e.wire
}

func (e *Event) encode() []byte {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	b, err := json.Marshal(wireEvent{
		ID:      e.Cursor().String(),
		Channel: e.Channel,
		Type:    e.Type,
		Data:    data,
		At:      e.At.UTC(),
	})
	if err != nil {
		// Data comes from a jsonb column or was validated on append, so it is
		// valid JSON; anything else is a bug worth seeing loudly.
		panic(fmt.Sprintf("encode event %d: %v", e.Seq, err))
	}
	// jsonb never contains raw newlines, but compacting makes the SSE
	// framing guarantee independent of where the bytes came from.
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		panic(fmt.Sprintf("compact event %d: %v", e.Seq, err))
	}
	return buf.Bytes()
}

// MarshalJSON implements json.Marshaler with the wire encoding.
func (e *Event) MarshalJSON() ([]byte, error) { return e.JSON(), nil }

// UnmarshalJSON implements json.Unmarshaler for the wire encoding, so Go
// clients decode exactly what the server sends.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	c, err := ParseCursor(w.ID)
	if err != nil || c.Seq <= 0 {
		return fmt.Errorf("decode event: id %q is not \"<epoch>.<seq>\" with a positive seq", w.ID)
	}
	*e = Event{Epoch: c.Epoch, Seq: c.Seq, Channel: w.Channel, Type: w.Type, Data: w.Data, At: w.At}
	return nil
}

// Cursor is the event's position: its epoch and seq.
func (e *Event) Cursor() Cursor { return Cursor{Epoch: e.Epoch, Seq: e.Seq} }
