package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/herald-dev/herald"
)

// maxHistory bounds one history page.
const maxHistory = 1000

// historyResetReason explains a history reset. It lacks the "(restored
// or promoted)" of the stream's and long-poll's: the wire text predates the
// one ResetError and stays as clients have seen it.
const historyResetReason = "the history after this cursor is no longer retained, or is another history than the database's current one"

// handleHistory is GET /v1/channels/{channel}/events?after=N&limit=M: a
// channel's stored notices after a cursor, for clients that want to page
// through instead of stream. Same authorisation as subscribing.
func (s *Server) handleHistory(c *gin.Context) {
	q, err := parseQuery(c.Request)
	if err == nil {
		err = checkParams(q, historyParams)
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	ch := c.Param("channel")
	if err := herald.ValidateChannel(ch); err != nil {
		s.abort(c, badRequest("invalid_channel", err.(*herald.InvalidError).Reason))
		return
	}
	after, _, err := parseCursor(q.Get("after"), "after")
	if err != nil {
		s.abort(c, err)
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistory {
			s.abort(c, badRequest("invalid_limit", fmt.Sprintf("limit must be a whole number from 1 to %d (got %q)", maxHistory, truncate(v, 20))))
			return
		}
		limit = n
	}
	if _, err := s.authorize(c, []string{ch}, false); err != nil {
		s.abort(c, err)
		return
	}
	// Up to what this replica has delivered: history never runs ahead of
	// the streams.
	pos := s.feed.Position()
	head := pos.Seq
	page, err := s.db.After(c.Request.Context(), after.Seq, []string{ch}, head, limit)
	if err == nil && (page.Epoch != pos.Epoch || (after.Epoch != "" && after.Epoch != page.Epoch) || after.Seq > page.Head) {
		// Another history than the cursor's (restored or promoted
		// database), or a cursor ahead of the log: same answer as a
		// cursor whose history was dropped.
		err = &herald.ResetError{}
	}
	var reset *herald.ResetError
	if errors.As(err, &reset) {
		s.abort(c, &herald.ResetError{Head: herald.Cursor{Epoch: page.Epoch, Seq: page.Head}, Reason: historyResetReason})
		return
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	// The cursor to continue from: the last event's seq, or when the page
	// is not full, the head (nothing more on this channel up to it).
	next := head
	if len(page.Events) == limit {
		next = page.Events[len(page.Events)-1].Seq
	}
	next = max(next, after.Seq)
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Status(http.StatusOK)
	w := c.Writer
	_, _ = w.WriteString(`{"events":[`)
	for i, e := range page.Events {
		if i > 0 {
			_, _ = w.WriteString(",")
		}
		_, _ = w.Write(e.JSON())
	}
	_, _ = w.WriteString(`],"cursor":"` + herald.Cursor{Epoch: page.Epoch, Seq: next}.String() + `"}`)
}
