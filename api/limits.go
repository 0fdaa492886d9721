package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herald-dev/herald/store"
)

// SubjectLimiter counts a subject's connections across every replica.
type SubjectLimiter interface {
	Acquire(ctx context.Context, subject string, max int) (release func(), err error)
}

var _ SubjectLimiter = (*store.Leases)(nil)

// ipCounter counts anonymous connections per client IP on this replica.
type ipCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *ipCounter) acquire(ip string, max int) (func(), bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	if c.n[ip] >= max {
		return nil, false
	}
	c.n[ip]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.n[ip]--; c.n[ip] <= 0 {
				delete(c.n, ip)
			}
		})
	}, true
}

// admit applies the connection limits to an authorised request: per
// subject across replicas when the grant names one, per IP otherwise.
func (s *Server) admit(ctx context.Context, g Grant, ip string) (func(), error) {
	if g.Subject != "" && s.cfg.MaxConnsPerSubject > 0 && s.cfg.Leases != nil {
		release, err := s.cfg.Leases.Acquire(ctx, g.Subject, s.cfg.MaxConnsPerSubject)
		if errors.Is(err, store.ErrLimit) {
			return nil, &Error{Code: "too_many_connections",
				Message:    fmt.Sprintf("this user already has %d open connections; close one (herald.js can share one connection between tabs)", s.cfg.MaxConnsPerSubject),
				RetryAfter: 5 * time.Second}
		}
		return release, err
	}
	if g.Subject == "" && s.cfg.MaxConnsPerIP > 0 {
		release, ok := s.ips.acquire(ip, s.cfg.MaxConnsPerIP)
		if !ok {
			return nil, &Error{Code: "too_many_connections",
				Message:    fmt.Sprintf("at most %d anonymous connections per address", s.cfg.MaxConnsPerIP),
				RetryAfter: 5 * time.Second}
		}
		return release, nil
	}
	return func() {}, nil
}
