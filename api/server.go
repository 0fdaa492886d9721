// Package api is herald's HTTP surface: the gin router, request parsing and
// authorisation, the error table, health, and the mounts for the stream
// and long-poll handlers.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/hub"
	"github.com/herald-dev/herald/longpoll"
	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/stream"
)

// Config is the HTTP side's configuration; zero values take the defaults.
type Config struct {
	Heartbeat      time.Duration // SSE heartbeat (default 15 s)
	Retry          time.Duration // SSE reconnect delay (default 2 s)
	MaxLifetime    time.Duration // SSE stream lifetime, jittered (default none)
	MaxChannels    int           // per connection (default 100)
	PollTimeout    time.Duration // default long-poll timeout (default DefaultPollTimeout)
	PollMaxTimeout time.Duration // highest accepted (default DefaultPollMaxTimeout)
	// WriteTimeout bounds each write to a stream; a client that does not
	// read within it is dropped and resumes by cursor (default 10 s).
	WriteTimeout time.Duration
	Log          *slog.Logger
	// Authorizer decides who may read which channels; nil is a
	// ChannelAuth with no tokens: public channels open, private- refused.
	Authorizer Authorizer
	// MaxConnsPerSubject limits a token subject's open streams and polls
	// across all replicas (needs Leases); MaxConnsPerIP limits anonymous
	// ones per client address on this replica. 0 = no limit.
	MaxConnsPerSubject int
	MaxConnsPerIP      int
	Leases             SubjectLimiter
	// APIKeys may POST /v1/events; none configured disables the endpoint.
	// An entry "KEY:PATTERN|PATTERN" may publish only to the channels the
	// patterns cover (MatchGrant); cmd refuses keys under MinAPIKeyLen.
	APIKeys []string
	// CORSOrigins are the browser origins allowed to call herald ("*" for
	// any, without credentials). None: no cross-origin access.
	CORSOrigins []string
	// Metrics, if set, are updated and served at /metrics. Wire the
	// sequencer and feed with Metrics.Sequencer and Metrics.Feed.
	Metrics *Metrics
	// Sequencer, if set, is reported by /readyz: a sequencer that cannot
	// write (read-only or full database) leaves the log frozen while
	// history is still served, which operators need to see.
	Sequencer SequencerStatus
	// TrustedProxies may set X-Forwarded-For (CIDRs or IPs); none: the
	// client address is the TCP peer. No other header is believed.
	TrustedProxies []string
	// RevocationTTL is how long a revocation lasts when POST
	// /v1/revocations names no ttl: at least as long as the tokens it may
	// match live (default 24 h).
	RevocationTTL time.Duration
	// BodyTimeout is how long a client has to send a request body once
	// its headers are in (default 10 s); a slower body gets a 408 and the
	// connection is closed.
	BodyTimeout time.Duration
	// SeparateAdmin leaves /metrics and /readyz off Handler: serve them
	// from AdminHandler on a private listener instead.
	SeparateAdmin bool
}

// DB is what the api needs from the database handle.
type DB interface {
	Ping(ctx context.Context) error
	SchemaCurrent(ctx context.Context) (bool, error)
	Append(ctx context.Context, events ...herald.NewEvent) ([]int64, error)
	Revoke(ctx context.Context, jti, subject string, ttl time.Duration) (store.Revocation, error)
	After(ctx context.Context, cursor int64, channels []string, upto int64, limit int) (hub.Page, error)
}

var _ DB = (*store.DB)(nil)

// SequencerStatus is what readiness shows about the sequencer.
type SequencerStatus interface {
	Leader() bool
	Err() error
}

var _ SequencerStatus = (*store.Sequencer)(nil)

// FeedStatus is what readiness and history need from the feed.
type FeedStatus interface {
	Connected() bool
	Head() int64
	Position() herald.Cursor
}

// Server holds the handlers and the shutdown signal.
type Server struct {
	cfg      Config
	log      *slog.Logger
	db       DB
	feed     FeedStatus
	stream   *stream.Handler
	poll     *longpoll.Handler
	engine   *gin.Engine
	stop     chan struct{}
	stopOnce sync.Once
	ips      ipCounter
	apiKeys  []apiKey
}

// New builds the router.
func New(cfg Config, db *store.DB, feed *store.Feed) *Server {
	if cfg.MaxChannels <= 0 {
		cfg.MaxChannels = 100
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 10 * time.Second
	}
	if cfg.PollMaxTimeout <= 0 {
		cfg.PollMaxTimeout = DefaultPollMaxTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer = &ChannelAuth{}
	}
	if ca, ok := cfg.Authorizer.(*ChannelAuth); ok && ca.Revocations == nil && feed != nil {
		ca.Revocations = feed.Revocations()
	}
	s := &Server{cfg: cfg, log: cfg.Log, db: db, feed: feed, stop: make(chan struct{})}
	for _, k := range cfg.APIKeys {
		key, err := parseAPIKey(k)
		if err != nil {
			// Validated by cmd (ValidateAPIKey); a bad entry is left out.
			cfg.Log.Warn("API key left out", "err", err)
			continue
		}
		s.apiKeys = append(s.apiKeys, key)
	}
	s.stream = &stream.Handler{
		Feed: feed, Heartbeat: cfg.Heartbeat, Retry: cfg.Retry, MaxLifetime: cfg.MaxLifetime, WriteTimeout: cfg.WriteTimeout,
		Stop: s.stop, Log: cfg.Log,
	}
	s.poll = &longpoll.Handler{Feed: feed, Stop: s.stop}
	if m := cfg.Metrics; m != nil {
		if feed != nil {
			m.feedHead(feed.Head)
		}
		s.stream.Hooks = m.streamHooks()
		s.poll.Hooks = m.pollHooks()
	}

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	// The client address comes from X-Forwarded-For only, and only when
	// the TCP peer is a trusted proxy. gin would also read X-Real-IP, and
	// fall back to it when X-Forwarded-For has an entry it cannot parse,
	// which lets a client pick its own address.
	e.RemoteIPHeaders = []string{"X-Forwarded-For"}
	e.TrustedPlatform = ""
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		// Validated by cmd; a bad entry here falls back to trusting none.
		cfg.Log.Warn("trusted proxies", "err", err)
		_ = e.SetTrustedProxies(nil)
	}
	if cfg.Metrics != nil {
		e.Use(cfg.Metrics.middleware())
	}
	e.Use(s.recoverer(), s.cors(), s.limitQuery())
	e.HandleMethodNotAllowed = true
	e.NoRoute(func(c *gin.Context) {
		s.abort(c, &Error{Code: "not_found", Message: "no such endpoint; see the README for the API"})
	})
	e.NoMethod(func(c *gin.Context) {
		s.abort(c, &Error{Code: "method_not_allowed", Message: "method not allowed on this endpoint"})
	})
	e.GET("/healthz", s.healthz)
	if !cfg.SeparateAdmin {
		s.adminRoutes(e)
	}
	// No gzip or other buffering middleware on these two: they must reach
	// the client as they are written.
	e.GET("/v1/stream", s.handleStream)
	e.GET("/v1/poll", s.handlePoll)
	e.POST("/v1/events", s.handlePublish)
	e.POST("/v1/revocations", s.handleRevoke)
	e.GET("/v1/channels/:channel/events", s.handleHistory)
	e.GET("/v1/openapi.json", serveOpenAPI)
	s.engine = e
	return s
}

// Engine exposes the router so other parts (web, metrics) can add routes.
func (s *Server) Engine() *gin.Engine { return s.engine }

// Handler is the http.Handler to serve: the router behind the request
// body deadline.
func (s *Server) Handler() http.Handler { return bodyDeadline(s.engine, s.cfg.BodyTimeout) }

// Drain tells every stream to send its retry hint and end, and every
// waiting poll to answer now. Call it before http.Server.Shutdown, which
// otherwise waits for streams that never end.
func (s *Server) Drain() { s.stopOnce.Do(func() { close(s.stop) }) }

// Wait waits, after Drain, for the streams that run outside net/http to
// end (http.Server.Shutdown does not see them), or for ctx.
func (s *Server) Wait(ctx context.Context) error { return s.stream.Wait(ctx) }

func (s *Server) handleStream(c *gin.Context) {
	q, channels, ok := s.channels(c, streamParams)
	if !ok {
		return
	}
	cursor, has, err := streamCursor(c.Request, q)
	if err != nil {
		s.abort(c, err)
		return
	}
	grant, err := s.authorize(c, channels, true)
	if err != nil {
		s.abortStream(c, err)
		return
	}
	// The stream may outlive this handler (stream.Serve detaches it from
	// net/http): the connection's grant and gauge end with the stream.
	closeGauge := s.cfg.Metrics.connection("sse")
	ended := func() { closeGauge(); grant.release() }
	req := stream.Request{
		Channels: channels, Cursor: cursor, HasCursor: has, Expires: grant.Expires,
		PlainMessages: q.Get("events") == "message",
		Recheck:       grant.Recheck, RecheckEvery: grant.RecheckEvery,
	}
	if grant.watch != nil {
		revoked, stop := grant.watch()
		req.Revoked = revoked
		prev := ended
		ended = func() { stop(); prev() }
	}
	if err := s.stream.Serve(c.Writer, c.Request, req, ended); err != nil {
		s.abortStream(c, err)
	}
}

func (s *Server) handlePoll(c *gin.Context) {
	q, channels, ok := s.channels(c, pollParams)
	if !ok {
		return
	}
	cursor, has, err := parseCursor(q.Get("cursor"), "cursor")
	if err != nil {
		s.abort(c, err)
		return
	}
	timeout, err := parseTimeout(q.Get("timeout"), s.cfg.PollTimeout, s.cfg.PollMaxTimeout)
	if err != nil {
		s.abort(c, err)
		return
	}
	grant, err := s.authorize(c, channels, true)
	if err != nil {
		s.abort(c, err)
		return
	}
	defer grant.release()
	defer s.cfg.Metrics.connection("poll")()
	if !grant.Expires.IsZero() {
		timeout = min(timeout, max(time.Until(grant.Expires), time.Second))
	}
	req := longpoll.Request{Channels: channels, Cursor: cursor, HasCursor: has, Timeout: timeout}
	if grant.watch != nil {
		revoked, stop := grant.watch()
		defer stop()
		req.Revoked = revoked
	}
	if err := s.poll.Serve(c.Writer, c.Request, req); err != nil {
		if errors.Is(err, longpoll.ErrRevoked) {
			err = errTokenRevoked
		}
		s.abort(c, err)
	}
}

// channels parses the query (once: the handler reads every parameter from
// q), checks its parameter names against known and reads the channels,
// answering the error itself when any is wrong.
func (s *Server) channels(c *gin.Context, known []string) (q url.Values, channels []string, ok bool) {
	q, err := parseQuery(c.Request)
	if err == nil {
		err = checkParams(q, known)
	}
	if err == nil {
		channels, err = parseChannels(q, s.cfg.MaxChannels)
	}
	if err != nil {
		s.abort(c, err)
		return nil, nil, false
	}
	return q, channels, true
}

// authorize is the one authorisation path for stream, poll and history:
// the Authorizer's grant, then (for connections) the limits.
func (s *Server) authorize(c *gin.Context, channels []string, connection bool) (Grant, error) {
	c.Request = withClientIP(c.Request, c.ClientIP())
	if connection {
		// Draining: a stream or poll opened now would end at once; 503
		// shutting_down sends the client to another replica instead.
		select {
		case <-s.stop:
			return Grant{}, herald.ErrStopped
		default:
		}
	}
	g, err := s.cfg.Authorizer.Authorize(c.Request, channels)
	if err == nil && connection {
		var release func()
		if release, err = s.admit(c.Request.Context(), g, c.ClientIP()); err == nil {
			if prev := g.Release; prev != nil {
				g.Release = func() { release(); prev() }
			} else {
				g.Release = release
			}
		}
	}
	if err != nil {
		if ae, ok := toAPIError(err); ok {
			s.cfg.Metrics.authFailed(ae.Code)
		}
		return g, err
	}
	return g, nil
}

func (s *Server) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz: database reachable, LISTEN connected, migrations current.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{}
	ok := true
	if err := s.db.Ping(ctx); err != nil {
		checks["database"], ok = "unreachable", false
	} else {
		checks["database"] = "ok"
		current, err := s.db.SchemaCurrent(ctx)
		switch {
		case err != nil:
			checks["migrations"], ok = "unknown: "+err.Error(), false
		case !current:
			checks["migrations"], ok = "not current (run herald migrate up)", false
		default:
			checks["migrations"] = "ok"
		}
	}
	if s.feed.Connected() {
		checks["listen"] = "ok"
	} else {
		checks["listen"], ok = "disconnected", false
	}
	select {
	case <-s.stop:
		checks["server"], ok = "shutting down", false
	default:
	}
	degraded := false
	if seq := s.cfg.Sequencer; seq != nil {
		switch err := seq.Err(); {
		case err != nil:
			// Still ready: streams, polls and history work; new events
			// wait until the database takes writes again.
			checks["sequencer"], degraded = "failing: "+truncate(err.Error(), 300), true
		case seq.Leader():
			checks["sequencer"] = "leader"
		default:
			checks["sequencer"] = "standby"
		}
	}
	c.Header("Cache-Control", "no-store")
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, gin.H{"ready": ok, "degraded": degraded, "checks": checks})
}

// recoverer turns a panic into a logged 500 without killing the process.
func (s *Server) recoverer() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "route", c.FullPath(), "panic", v)
				if !c.Writer.Written() {
					c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": gin.H{"code": "internal", "message": "internal error; it has been logged"}})
				}
			}
		}()
		c.Next()
	}
}

// limitQuery rejects oversized query strings before any parsing.
func (s *Server) limitQuery() gin.HandlerFunc {
	return func(c *gin.Context) {
		if len(c.Request.URL.RawQuery) > MaxQueryBytes {
			s.abort(c, &Error{Code: "query_too_long", Message: "the query string is too long; name fewer channels"})
			return
		}
		c.Next()
	}
}
