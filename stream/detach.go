package stream

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald"
)

// detach takes an HTTP/1.x connection over from net/http once the request
// has been accepted. While a handler runs, net/http holds on to the
// connection's 4 KiB read and 4 KiB write buffers, the response's 2 KiB
// buffer, the parsed request, gin's context, a background-read goroutine and
// the handler goroutine with its stack through the whole middleware chain:
// 33 KiB per idle stream, measured. A detached stream keeps the connection,
// the subscription and one goroutine with a shallow stack, which writes;
// the process's close watcher notices the client leaving (on Linux; a
// second goroutine per stream, waiting in Read, elsewhere). The response
// head goes out with the first write; the body is chunked (HTTP/1.1) or
// ended by close (HTTP/1.0), and the connection closes when the stream
// ends.
//
// It returns false, having touched nothing, where hijacking is not possible
// (HTTP/2, a ResponseWriter without Hijack): the stream then runs inside
// net/http as before.
func detach(w http.ResponseWriter, r *http.Request) (*detached, bool) {
	if r.ProtoMajor != 1 {
		return nil, false
	}
	hdr := w.Header()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false
	}
	chunked := r.ProtoAtLeast(1, 1)
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	hdr.Set("Connection", "close")
	if chunked {
		hdr.Set("Transfer-Encoding", "chunked")
	}
	_ = hdr.Write(&head)
	head.WriteString("\r\n")
	ctx, cancel := context.WithCancel(context.Background())
	d := &detached{
		ctx: ctx, cancel: cancel, conn: conn,
		sink: &connSink{conn: conn, chunked: chunked, head: head.Bytes()},
	}
	// Nothing net/http set on the connection applies any more.
	_ = conn.SetDeadline(time.Time{})
	return d, true
}

// detached is a stream's connection once taken from net/http.
type detached struct {
	ctx    context.Context // ends when the client goes away
	cancel context.CancelFunc
	conn   net.Conn
	sink   *connSink
	// live counts the stream's goroutines still running; the last one
	// out runs end, so that once Wait returns none is left.
	live atomic.Int32
	end  func()
}

func (d *detached) leave() {
	if d.live.Add(-1) == 0 {
		d.end()
	}
}

// startDetached runs the stream on a goroutine of its own, the writer (run,
// then close the connection), with the client's leaving noticed by the
// close watcher (closewatch_linux.go) or, where there is none, by a second
// goroutine, watch. done runs when they are over.
func (h *Handler) startDetached(d *detached, sub herald.Subscription, req Request, done func()) {
	h.detached.add()
	d.end = func() {
		done()
		h.detached.remove()
	}
	// The client leaving ends ctx: noticed by the process's close
	// watcher where there is one, else by a goroutine of the stream's own.
	unwatch, shared := watchClose(d.conn, d.cancel)
	if shared {
		d.live.Store(1)
	} else {
		d.live.Store(2)
		go d.watch()
	}
	go func() {
		defer d.leave()
		// net/http recovers a handler's panic and drops only its
		// connection; a detached stream must do the same for itself.
		defer h.recoverPanic()
		defer d.conn.Close() // also ends watch
		if shared {
			defer unwatch() // before the close: the fd may be reused at once
		}
		defer d.cancel()
		sw := h.newWriter(d.sink, req)
		h.run(d.ctx, sub, sw, req)
		if sw.err == nil {
			// The deadline of the last write still bounds this one.
			d.sink.end()
		}
	}()
}

// watch waits for the client to close the connection (or the stream to
// close it) and ends ctx. A client has nothing to send on a stream; any
// bytes it does send are read and dropped, so its writes never block.
func (d *detached) watch() {
	defer d.leave()
	defer d.cancel()
	buf := make([]byte, 64)
	for {
		if _, err := d.conn.Read(buf); err != nil {
			return
		}
	}
}

// Wait waits until every detached stream has ended, or ctx is done.
// net/http's Server.Shutdown no longer sees their connections: call it
// after closing Stop.
func (h *Handler) Wait(ctx context.Context) error { return h.detached.wait(ctx) }

// streamCount counts detached streams for Wait. Unlike a WaitGroup, adding
// while someone waits is allowed: a request accepted just before shutdown
// can still detach.
type streamCount struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil if nobody waits
}

func (c *streamCount) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *streamCount) remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 && c.zero != nil {
		close(c.zero)
		c.zero = nil
	}
}

func (c *streamCount) wait(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.n == 0 {
			c.mu.Unlock()
			return nil
		}
		if c.zero == nil {
			c.zero = make(chan struct{})
		}
		zero := c.zero
		c.mu.Unlock()
		select {
		case <-zero:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
