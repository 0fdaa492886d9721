package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store"
)

// target is the server under test: how to subscribe and how to publish.
// herald is fed by INSERTs into herald.events, as an app feeds it; nchan
// by HTTP POSTs, its only way in.
type target interface {
	Name() string
	// StreamPath is the SSE request path (with query) for channel.
	StreamPath(channel string) string
	// Prime prepares channel for clients that must not miss its first
	// event however late their first request reaches the server, and
	// returns the id they start after ("" when none is needed).
	Prime(ctx context.Context, channel string) (string, error)
	// Publish publishes data on channel, each element one event, in
	// order: one transaction for herald, one POST each for nchan.
	Publish(ctx context.Context, channel string, data ...[]byte) error
	Close()
}

// heraldTarget publishes through store, exactly as an app's INSERT would.
type heraldTarget struct {
	base *url.URL
	db   *store.DB
}

func (h *heraldTarget) Name() string { return "herald" }

func (h *heraldTarget) StreamPath(channel string) string {
	return "/v1/stream?channel=" + url.QueryEscape(channel)
}

// Prime: herald's long-poll answers a first poll with the head, its
// cursor; nothing is needed.
func (h *heraldTarget) Prime(context.Context, string) (string, error) { return "", nil }

func (h *heraldTarget) Publish(ctx context.Context, channel string, data ...[]byte) error {
	evs := make([]herald.NewEvent, len(data))
	for i, d := range data {
		evs[i] = herald.NewEvent{Channel: channel, Data: d}
	}
	_, err := h.db.Append(ctx, evs...)
	return err
}

func (h *heraldTarget) Close() { h.db.Close() }

// nchanTarget speaks nchan's HTTP API as configured in bench/nchan.conf:
// POST /pub/<channel>, GET /sub/<channel>.
type nchanTarget struct {
	name   string // "nchan", or "nethttp" for the floor (floor.go)
	base   *url.URL
	client *http.Client
}

func newNchanTarget(name string, base *url.URL, conns int) *nchanTarget {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &nchanTarget{name: name, base: base, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (n *nchanTarget) Name() string { return n.name }

func (n *nchanTarget) StreamPath(channel string) string { return "/sub/" + url.PathEscape(channel) }

// Prime publishes a message outside every run (no "r") and returns its
// id: a client sending it as Last-Event-ID gets every later message
// whenever its request arrives. (An invented older id such as "1:0" is not
// reliable: with two workers, some such subscribers got the oldest message
// and nothing after it.)
func (n *nchanTarget) Prime(ctx context.Context, channel string) (string, error) {
	body, err := n.post(ctx, channel, []byte(`{"primer":1}`))
	if err != nil {
		return "", err
	}
	// The answer is text: "...\nlast message id: 1795435275:0".
	const key = "last message id: "
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return "", fmt.Errorf("POST /pub/%s: no message id in %q", channel, body)
	}
	id := body[i+len(key):]
	if j := bytes.IndexAny(id, "\r\n"); j >= 0 {
		id = id[:j]
	}
	return string(id), nil
}

func (n *nchanTarget) Publish(ctx context.Context, channel string, data ...[]byte) error {
	for _, d := range data {
		if _, err := n.post(ctx, channel, d); err != nil {
			return err
		}
	}
	return nil
}

func (n *nchanTarget) post(ctx context.Context, channel string, data []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.base.String()+"/pub/"+url.PathEscape(channel), bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("POST /pub/%s: %s", channel, resp.Status)
	}
	return body, nil
}

func (n *nchanTarget) Close() { n.client.CloseIdleConnections() }
