package api

import (
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// UnavailableEvent is the SSE event type of herald's in-band answer to a
// stream request that cannot be served right now (see abortStream).
const UnavailableEvent = "unavailable"

// abortStream answers a failed /v1/stream request. Any status but 200 is
// fatal to a browser's EventSource (WHATWG HTML, "fail the connection"):
// it closes for good and never reconnects. So when the request comes from
// an event-stream client (Accept: text/event-stream, as EventSource and
// most SSE libraries send) and the failure passes by itself (429 at a
// connection limit, 503 while the database, the auth app or this replica
// is away), it answers 200 text/event-stream instead: a "retry:" set to
// the Retry-After hint, one "unavailable" event whose data is the JSON
// error, and the end of the stream. The client reconnects after the hint
// with its Last-Event-ID unchanged (the answer has no id). Permanent
// errors (4xx but 429) keep their status: retrying cannot help them.
func (s *Server) abortStream(c *gin.Context, err error) {
	ae, known := toAPIError(err)
	if !passing(ae.Status()) || !wantsEventStream(c.Request) {
		s.abort(c, err)
		return
	}
	if !known {
		s.log.Error("request failed", "route", c.FullPath(), "err", err)
	}
	retry := ae.RetryAfter
	if retry <= 0 {
		retry = 2 * time.Second
	}
	data, _ := json.Marshal(unavailableData{
		Status:     ae.Status(),
		Error:      apiErrorBody{Code: ae.Code, Message: ae.Message},
		RetryAfter: int((retry + time.Second - 1) / time.Second),
	})
	var b strings.Builder
	b.WriteString("retry: ")
	b.WriteString(strconv.FormatInt(retry.Milliseconds(), 10))
	b.WriteString("\n\nevent: " + UnavailableEvent + "\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	c.Status(http.StatusOK)
	_, _ = c.Writer.WriteString(b.String())
	c.Abort()
}

// unavailableData is the data of an "unavailable" event: the status the
// request would have had, the usual error body, and the hint in seconds.
type unavailableData struct {
	Status     int          `json:"status"`
	Error      apiErrorBody `json:"error"`
	RetryAfter int          `json:"retryAfter"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// passing reports whether a status means "try again later": the limit
// frees up, the database or the auth app comes back, another replica
// answers.
func passing(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// wantsEventStream reports whether the request accepts text/event-stream
// explicitly (not through */*): EventSource always sends it.
func wantsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != "text/event-stream" {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}
