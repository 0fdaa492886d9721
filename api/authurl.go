package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// appAnswer is the app's decision about some channels.
type appAnswer struct {
	Allowed bool
	// Unauthenticated: the app answered 401 (no user), not 403.
	Unauthenticated bool
	Channels        []string // granted channels; empty with Allowed = all asked
	Subject         string
	// exact: Channels is the whole list of granted channels, even empty.
	exact bool
}

func (a appAnswer) grants(ch string) bool {
	if !a.Allowed {
		return false
	}
	if len(a.Channels) == 0 && !a.exact {
		return true
	}
	for _, g := range a.Channels {
		if g == ch {
			return true
		}
	}
	return false
}

// AuthURL asks the app, Pusher-style: POST {"channels":[...],"subject":...}
// to URL with the user's Cookie and Authorization forwarded. 200 grants
// (all asked, or the "channels" listed in the answer), 401/403 refuse;
// anything else, or no answer within Timeout, is a 503 for the client.
//
// Decisions are cached for TTL per (credentials, channel), in an LRU of
// CacheSize entries. Identical lookups in flight at once share one call to
// the app, and each client address may cause at most MissRate calls a
// second (MissBurst at once); beyond that it gets a 429. Together these
// keep the auth URL from being a way to multiply load on the app.
type AuthURL struct {
	URL       string
	Client    *http.Client
	Timeout   time.Duration // default 3 s
	TTL       time.Duration // default 30 s
	CacheSize int           // default 10000 decisions
	MissRate  float64       // cache misses per second per client address; 0: no limit
	MissBurst int           // default 2 × MissRate (at least 1)
	Log       *slog.Logger

	once    sync.Once
	cache   *decisionCache
	limiter *missLimiter
	flight  singleflight.Group
	// waiting counts callers waiting on a shared call to the app (tests).
	waiting atomic.Int64
}

var _ AppAuthorizer = (*AuthURL)(nil)

const defaultAuthCacheSize = 10000

func (a *AuthURL) init() {
	a.once.Do(func() {
		size := a.CacheSize
		if size <= 0 {
			size = defaultAuthCacheSize
		}
		a.cache = newDecisionCache(size)
		burst := float64(a.MissBurst)
		if burst <= 0 {
			burst = max(1, 2*a.MissRate)
		}
		a.limiter = &missLimiter{rate: a.MissRate, burst: burst}
	})
}

// Check implements AppAuthorizer: cached decisions first, then one call to
// the app (shared with identical concurrent lookups) for the rest.
func (a *AuthURL) Check(ctx context.Context, r *http.Request, subject string, channels []string) (appAnswer, error) {
	a.init()
	// Keys hash the credentials: the cache never holds them.
	creds := sha256.Sum256([]byte(r.Header.Get("Cookie") + "\x00" + r.Header.Get("Authorization") + "\x00" +
		r.URL.Query().Get("token") + "\x00" + subject))
	now := time.Now()
	ans := appAnswer{Allowed: true, exact: true}
	var miss []string
	for _, ch := range channels {
		d, ok := a.cache.get(channelKey(creds, ch), now)
		if !ok {
			miss = append(miss, ch)
			continue
		}
		ans.add(ch, d)
	}
	if len(miss) == 0 {
		return ans, nil
	}
	if !isRecheck(ctx) {
		if ok, wait := a.limiter.allow(clientIP(r), now); !ok {
			return appAnswer{}, &Error{Code: "auth_rate_limited",
				Message:    "too many private-channel checks from this address; retry after the delay in Retry-After",
				RetryAfter: max(wait, time.Second)}
		}
	}
	sort.Strings(miss)
	got, err := a.shared(ctx, r, subject, creds, miss)
	if err != nil {
		return appAnswer{}, err
	}
	expires := time.Now().Add(a.ttl())
	for _, ch := range miss {
		d := decision{granted: got.grants(ch), unauthenticated: got.Unauthenticated, subject: got.Subject, expires: expires}
		a.cache.put(channelKey(creds, ch), d)
		ans.add(ch, d)
	}
	return ans, nil
}

// shared asks the app about channels once for every identical lookup in
// flight. The call runs on its own context (bounded by Timeout), so one
// caller leaving does not fail the others; each caller stops waiting
// when its own ctx ends.
func (a *AuthURL) shared(ctx context.Context, r *http.Request, subject string, creds [32]byte, channels []string) (appAnswer, error) {
	h := sha256.New()
	h.Write(creds[:])
	for _, ch := range channels {
		// Length-prefixed: no channel name can imitate a boundary.
		fmt.Fprintf(h, "%d:%s", len(ch), ch)
	}
	key := string(h.Sum(nil))
	a.waiting.Add(1)
	res := a.flight.DoChan(key, func() (any, error) {
		return a.ask(context.WithoutCancel(ctx), r, subject, channels)
	})
	defer a.waiting.Add(-1)
	select {
	case v := <-res:
		if v.Err != nil {
			return appAnswer{}, v.Err
		}
		return v.Val.(appAnswer), nil
	case <-ctx.Done():
		return appAnswer{}, ctx.Err()
	}
}

func channelKey(creds [32]byte, ch string) [32]byte {
	return sha256.Sum256(append(creds[:], ch...))
}

// add folds one channel's decision into a combined answer, which lists
// exactly the channels granted; a 401 for any channel makes it a 401.
func (a *appAnswer) add(ch string, d decision) {
	a.exact = true
	if d.unauthenticated {
		a.Unauthenticated = true
	}
	if d.granted {
		a.Channels = append(a.Channels, ch)
	}
	if a.Subject == "" {
		a.Subject = d.subject
	}
}

// RecheckEvery is how often a stream the app granted asks again: half the
// TTL, so a withdrawn grant ends the stream within 1.5 × TTL (plus the
// app's answer time) of the app saying no.
func (a *AuthURL) RecheckEvery() time.Duration { return a.ttl() / 2 }

func (a *AuthURL) ttl() time.Duration {
	if a.TTL > 0 {
		return a.TTL
	}
	return 30 * time.Second
}

var errAuthUnavailable = &Error{Code: "auth_unavailable",
	Message: "the app that authorises private channels did not answer; retry shortly", RetryAfter: 2 * time.Second}

func (a *AuthURL) ask(ctx context.Context, r *http.Request, subject string, channels []string) (appAnswer, error) {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"channels": channels, "subject": subject})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err != nil {
		return appAnswer{}, fmt.Errorf("auth url: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range []string{"Cookie", "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	client := a.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		a.logf("auth URL unreachable", "err", redactURLError(err))
		return appAnswer{}, errAuthUnavailable
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var out struct {
			Channels []string `json:"channels"`
			Subject  string   `json:"subject"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if len(bytes.TrimSpace(b)) > 0 {
			if err := json.Unmarshal(b, &out); err != nil {
				a.logf("auth URL answered 200 with a body that is not the expected JSON", "err", err)
				return appAnswer{}, errAuthUnavailable
			}
		}
		return appAnswer{Allowed: true, Channels: out.Channels, Subject: out.Subject}, nil
	case http.StatusUnauthorized:
		return appAnswer{Unauthenticated: true}, nil
	case http.StatusForbidden:
		return appAnswer{}, nil
	default:
		a.logf("auth URL answered an unexpected status", "status", resp.StatusCode)
		return appAnswer{}, errAuthUnavailable
	}
}

func (a *AuthURL) logf(msg string, args ...any) {
	if a.Log != nil {
		a.Log.Warn(msg, args...)
	}
}

// redactURLError keeps the failure but drops the URL, which may carry
// credentials in its userinfo or query.
func redactURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
