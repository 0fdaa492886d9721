package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald"
)

// connCapped is a listener that holds at most max connections open at
// once. A connection over the cap is answered 503 and closed at once,
// rather than left waiting in the accept queue (as netutil.LimitListener
// does), so a client learns to retry elsewhere and a flood of idle or slow
// connections cannot use up the process's file descriptors.
type connCapped struct {
	net.Listener
	max  int64
	open atomic.Int64
	log  *slog.Logger
}

// limitConns caps ln at max open connections.
func limitConns(ln net.Listener, max int, log *slog.Logger) net.Listener {
	return &connCapped{Listener: ln, max: int64(max), log: log}
}

// overCap answers a connection over the cap before any request is read: a
// server-wide passing condition, so the core's "unavailable" (503 through
// the one error table) with a retry hint, like a draining server's answer.
var overCap = &herald.Error{
	Code:       herald.CodeUnavailable,
	Message:    "this server holds its maximum of connections (--max-conns); retry shortly",
	RetryAfter: 5 * time.Second,
}

// overCapResponse is overCap as raw HTTP/1.1, written once per refused
// connection without going through net/http.
var overCapResponse = func() string {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": overCap.Code, "message": overCap.Message}})
	st := overCap.Status()
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nRetry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		st, http.StatusText(st), int(overCap.RetryAfter/time.Second), len(body), body)
}()

func (l *connCapped) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.log.Debug("connection refused: at --max-conns", "remote", c.RemoteAddr().String())
			go func() {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.Write([]byte(overCapResponse))
				_ = c.Close()
			}()
			continue
		}
		return &cappedConn{Conn: c, l: l}, nil
	}
}

// cappedConn gives its place back once, on the first Close.
type cappedConn struct {
	net.Conn
	l    *connCapped
	once sync.Once
}

func (c *cappedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
