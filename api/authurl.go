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
	"strings"
	"sync"
	"time"
)

// appAnswer is the app's decision about some channels.
type appAnswer struct {
	Allowed bool
	// Unauthenticated: the app answered 401 (no user), not 403.
	Unauthenticated bool
	Channels        []string // granted channels; empty with Allowed = all asked
	Subject         string
}

func (a appAnswer) grants(ch string) bool {
	if !a.Allowed {
		return false
	}
	if len(a.Channels) == 0 {
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
// Answers are cached for TTL per (credentials, channels).
type AuthURL struct {
	URL     string
	Client  *http.Client
	Timeout time.Duration // default 3 s
	TTL     time.Duration // default 30 s
	Log     *slog.Logger

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	ans     appAnswer
	expires time.Time
}

var _ AppAuthorizer = (*AuthURL)(nil)

const maxAuthCache = 10000

// Check implements AppAuthorizer.
func (a *AuthURL) Check(ctx context.Context, r *http.Request, subject string, channels []string) (appAnswer, error) {
	sorted := append([]string(nil), channels...)
	sort.Strings(sorted)
	// The key hashes the credentials: the cache never holds them.
	key := sha256.Sum256([]byte(r.Header.Get("Cookie") + "\x00" + r.Header.Get("Authorization") + "\x00" +
		r.URL.Query().Get("token") + "\x00" + subject + "\x00" + strings.Join(sorted, ",")))
	now := time.Now()
	a.mu.Lock()
	if c, ok := a.cache[key]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.ans, nil
	}
	a.mu.Unlock()

	ans, err := a.ask(ctx, r, subject, channels)
	if err != nil {
		return ans, err
	}
	a.mu.Lock()
	if a.cache == nil || len(a.cache) >= maxAuthCache {
		a.cache = make(map[[32]byte]cached) // crude but bounded
	}
	a.cache[key] = cached{ans: ans, expires: now.Add(a.ttl())}
	a.mu.Unlock()
	return ans, nil
}

func (a *AuthURL) ttl() time.Duration {
	if a.TTL > 0 {
		return a.TTL
	}
	return 30 * time.Second
}

var errAuthUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "auth_unavailable",
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
		if r.Context().Err() != nil {
			return appAnswer{}, r.Context().Err()
		}
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
