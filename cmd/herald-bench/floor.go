package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// floorServer is the long-poll exchange the longpoll scenario drives,
// served by Go's net/http with nothing else: no router, no authorisation,
// no metrics, no database, messages in a slice. It speaks the part of
// nchan's API the scenario uses (POST /pub/<channel>; GET /sub/<channel>
// answered with the next message after Last-Event-ID "N:0", or after
// If-Modified-Since "N", as Last-Modified "N+1"), so `--target nethttp`
// measures it with the same client as nchan.
//
// It is a reference point, not a server anyone should run: what one
// long-poll round trip costs in a Go process before any of herald's work,
// so that herald's long-poll figure can be split into "net/http" and
// "herald".
type floorServer struct {
	mu       sync.Mutex
	channels map[string]*floorChannel
}

type floorChannel struct {
	msgs [][]byte
	wake chan struct{} // closed and replaced on each publish
}

func newFloorServer() *floorServer {
	return &floorServer{channels: map[string]*floorChannel{}}
}

// maxFloorBody bounds a published message; the scenario's are ~100 bytes.
const maxFloorBody = 64 << 10

func (f *floorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/pub/"):
		f.publish(w, r, strings.TrimPrefix(r.URL.Path, "/pub/"))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/sub/"):
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			http.Error(w, "the net/http floor serves long-poll only", http.StatusNotImplemented)
			return
		}
		f.subscribe(w, r, strings.TrimPrefix(r.URL.Path, "/sub/"))
	default:
		http.NotFound(w, r)
	}
}

func (f *floorServer) publish(w http.ResponseWriter, r *http.Request, name string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFloorBody+1))
	if err != nil || len(body) > maxFloorBody {
		http.Error(w, "body unreadable or over 64 KiB", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	c := f.channel(name)
	c.msgs = append(c.msgs, body)
	id := len(c.msgs)
	close(c.wake)
	c.wake = make(chan struct{})
	f.mu.Unlock()
	fmt.Fprintf(w, "queued messages: %d\nlast message id: %d:0\n", id, id)
}

func (f *floorServer) subscribe(w http.ResponseWriter, r *http.Request, name string) {
	after, err := floorCursor(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		c := f.channel(name)
		var msg []byte
		if after < len(c.msgs) {
			msg = c.msgs[after]
		}
		wake := c.wake
		f.mu.Unlock()
		if msg != nil {
			h := w.Header()
			h["Last-Modified"] = []string{strconv.Itoa(after + 1)}
			h["Etag"] = []string{"0"}
			h["Content-Length"] = []string{strconv.Itoa(len(msg))}
			_, _ = w.Write(msg)
			return
		}
		select {
		case <-wake:
		case <-timeout.C:
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// channel returns name's channel, made on first use; f.mu is held.
func (f *floorServer) channel(name string) *floorChannel {
	c := f.channels[name]
	if c == nil {
		c = &floorChannel{wake: make(chan struct{})}
		f.channels[name] = c
	}
	return c
}

// floorCursor is how many messages the client has: "N:0" in Last-Event-ID
// (its first poll, after the primer), else "N" in If-Modified-Since (the
// Last-Modified of its previous answer), else 0.
func floorCursor(r *http.Request) (int, error) {
	v := strings.TrimSuffix(r.Header.Get("Last-Event-ID"), ":0")
	if v == "" {
		v = r.Header.Get("If-Modified-Since")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cursor %q: want a message count", v)
	}
	return n, nil
}

// runFloorServer is `herald-bench floor-server --listen ADDR`: serves the
// floor on a loopback address until ctx ends.
func runFloorServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", "127.0.0.1:8093", "loopback address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("herald-bench floor-server takes no arguments, got %q", fs.Args())}
	}
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return &usageError{fmt.Sprintf("--listen %q: want a loopback address such as 127.0.0.1:8093", *addr)}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("floor-server: listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: newFloorServer(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "net/http floor listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("floor-server: %w", err)
	}
	return nil
}
