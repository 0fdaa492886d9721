package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/herald-dev/herald"
)

// MaxPublishBatch and maxPublishBody bound one POST /v1/events.
const (
	MaxPublishBatch = 1000
	maxPublishBody  = 2 << 20
)

// publishEvent is one event in a POST /v1/events body.
type publishEvent struct {
	Channel string          `json:"channel"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
}

// handlePublish is POST /v1/events: for backends that cannot write to
// the database. Body: one event object, an array of them, or
// {"events":[...]}. Answers 201 {"ids":[...]} with the inbox ids; the seqs
// follow once the sequencer has ordered them.
func (s *Server) handlePublish(c *gin.Context) {
	key, err := s.checkAPIKey(c.Request)
	if err != nil {
		s.abort(c, err)
		return
	}
	events, err := decodePublish(c.Request)
	if err != nil {
		s.abort(c, err)
		return
	}
	for _, e := range events {
		if !key.allows(e.Channel) {
			s.abort(c, &Error{Code: "channel_not_allowed",
				Message: "this API key may not publish to channel " + truncate(e.Channel, 164) + "; see its scope in HERALD_API_KEYS"})
			return
		}
	}
	ids, err := s.db.Append(c.Request.Context(), events...)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"ids": ids})
}

func decodePublish(r *http.Request) ([]herald.NewEvent, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, &Error{Code: "unsupported_media_type", Message: "send Content-Type: application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxPublishBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Code: "payload_too_large", Message: fmt.Sprintf("the body is over %d bytes; send fewer events per request", maxPublishBody)}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, &Error{Code: "body_timeout", Message: "the body did not arrive in time; send it at once"}
		}
		return nil, &Error{Code: "invalid_body", Message: "could not read the body"}
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, badRequest("invalid_body", `the body is empty; send {"channel":"...","type":"...","data":{...}}`)
	}
	list, err := parsePublishBody(body)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, badRequest("invalid_body", "no events in the body")
	}
	if len(list) > MaxPublishBatch {
		return nil, &Error{Code: "too_many_events", Message: fmt.Sprintf("at most %d events per request", MaxPublishBatch)}
	}
	out := make([]herald.NewEvent, len(list))
	for i, e := range list {
		ne := herald.NewEvent{Channel: e.Channel, Type: e.Type, Data: e.Data}
		if err := ne.Validate(); err != nil { // fills in the defaults
			var inv *herald.InvalidError
			if len(list) > 1 && errors.As(err, &inv) {
				// Say which one; the table still maps it to 400 or 413.
				return nil, &herald.InvalidError{Field: inv.Field, Reason: fmt.Sprintf("event %d: %s", i, inv.Reason), TooLarge: inv.TooLarge}
			}
			return nil, err
		}
		out[i] = ne
	}
	return out, nil
}
