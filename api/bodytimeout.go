package api

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// bodyDeadline gives a request that has a body d to send it. Without it a
// client trickling a POST body a byte at a time holds a connection and a
// handler for as long as it likes (http.Server's ReadTimeout would also
// cut SSE streams, so it is not used). The deadline is set on the
// connection once the headers are in and lifted when the body has been
// read, so it never touches a handler's later work. Requests without a
// body (streams, polls) are left alone.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline when the body ends, unless it ended
// because the deadline passed (the connection is closed then).
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}
