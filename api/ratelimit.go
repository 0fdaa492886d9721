package api

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// missLimiter is a token bucket per client address: it bounds how many
// auth-URL cache misses, each a call to the app, one address can cause.
type missLimiter struct {
	rate  float64 // tokens per second; <= 0: no limit
	burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes a token for ip, or says how long until one is there.
func (l *missLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	if l == nil || l.rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[string]*bucket)
	}
	l.sweep(now)
	b, ok := l.buckets[ip]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[ip] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops, at most once a minute, the buckets that have refilled: a
// full bucket is the same as no bucket, so memory follows active addresses.
func (l *missLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for ip, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, ip)
		}
	}
}

type clientIPKey struct{}

// withClientIP records the client address (as gin resolved it, honouring
// the trusted proxies) for the authorizers below the router.
func withClientIP(r *http.Request, ip string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip))
}

// clientIP is the address withClientIP recorded, else the TCP peer.
func clientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok && ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

type recheckKey struct{}

// asRecheck marks a request as herald's own recheck of a running stream's
// grant: it is not the client asking, so it is not rate limited.
func asRecheck(ctx context.Context) context.Context {
	return context.WithValue(ctx, recheckKey{}, true)
}

func isRecheck(ctx context.Context) bool {
	v, _ := ctx.Value(recheckKey{}).(bool)
	return v
}
