package herald

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The limits of the contract. The database enforces
// the same ones with CHECK constraints (migrations/0001_init.up.sql), so
// apps writing SQL directly cannot get past them either.
const (
	MaxChannelLen = 164
	MaxTypeLen    = 64
	MaxDataBytes  = 8192
	DefaultType   = "message"
)

// InvalidError says which part of a client's input breaks the contract.
// Field is "channel", "type" or "data"; TooLarge marks payloads over the
// size limit (HTTP 413 rather than 400).
type InvalidError struct {
	Field    string
	Reason   string
	TooLarge bool
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// NewEvent is a notice to publish, before the log gives it a seq.
type NewEvent struct {
	Channel string          `json:"channel"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
}

// Validate checks e against the contract and fills in the defaults: the
// type DefaultType and the data {}. Every publish path (POST /v1/events,
// herald publish, the store's Append) goes through it, so the defaults are
// set here and nowhere else.
func (e *NewEvent) Validate() error {
	if e.Type == "" {
		e.Type = DefaultType
	}
	if err := ValidateChannel(e.Channel); err != nil {
		return err
	}
	if err := ValidateType(e.Type); err != nil {
		return err
	}
	if err := ValidateData(e.Data); err != nil {
		return err
	}
	if len(bytes.TrimSpace(e.Data)) == 0 {
		e.Data = json.RawMessage("{}")
	}
	return nil
}

func channelByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '_', '-', '=', '@', ',', '.', ';':
		return true
	}
	return false
}

// ValidateChannel reports whether name is a legal channel name: 1–164
// characters of [A-Za-z0-9_-=@,.;].
func ValidateChannel(name string) error {
	if name == "" {
		return &InvalidError{Field: "channel", Reason: "channel name is empty"}
	}
	if len(name) > MaxChannelLen {
		return &InvalidError{Field: "channel", Reason: fmt.Sprintf("channel name is %d characters long; the limit is %d", len(name), MaxChannelLen)}
	}
	for i := 0; i < len(name); i++ {
		if !channelByte(name[i]) {
			return &InvalidError{Field: "channel", Reason: fmt.Sprintf("channel name %q has an illegal character at position %d; allowed are A-Z a-z 0-9 and _-=@,.;", truncate(name, 64), i+1)}
		}
	}
	return nil
}

// ValidateType reports whether t is a legal event type: 1–64 characters of
// [A-Za-z0-9_.:-]. Types become the SSE "event:" line, so nothing that could
// break framing (newlines, colons at the start) gets through.
func ValidateType(t string) error {
	if t == "" || len(t) > MaxTypeLen {
		return &InvalidError{Field: "type", Reason: fmt.Sprintf("type must be 1-%d characters", MaxTypeLen)}
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(channelByte(c) && c != '=' && c != '@' && c != ',' && c != ';') && c != ':' {
			return &InvalidError{Field: "type", Reason: fmt.Sprintf("type %q has an illegal character at position %d; allowed are A-Z a-z 0-9 and _-.:", truncate(t, 64), i+1)}
		}
	}
	return nil
}

// ValidateData reports whether data is a JSON object of at most 8 KiB once
// compacted (the size Postgres's jsonb text form would have is close to it).
func ValidateData(data json.RawMessage) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil // defaults to {}
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return &InvalidError{Field: "data", Reason: "data must be a JSON object, like {\"build\":190852,\"state\":\"STARTED\"}"}
	}
	if len(trimmed) > MaxDataBytes {
		var buf bytes.Buffer
		if err := json.Compact(&buf, trimmed); err != nil || buf.Len() > MaxDataBytes {
			return &InvalidError{Field: "data", TooLarge: true, Reason: fmt.Sprintf("data is larger than %d bytes; send ids and states in the notice and let clients fetch the rest from your API", MaxDataBytes)}
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
