package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAuthURLSingleflight: 20 identical lookups in flight at once make one
// call to the app, and all get its answer.
func TestAuthURLSingleflight(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
	}))
	defer app.Close()
	a := &AuthURL{URL: app.URL, TTL: time.Minute, Timeout: 30 * time.Second}
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	answers := make([]appAnswer, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest(http.MethodGet, "/v1/stream?channel=private-a", nil)
			r.Header.Set("Cookie", "s=same")
			answers[i], errs[i] = a.Check(context.Background(), r, "", []string{"private-a"})
		}()
	}
	// All 20 are past the cache and waiting for the app before it answers.
	deadline := time.Now().Add(20 * time.Second)
	for a.waiting.Load() < n {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d of %d lookups waiting after 20 s", a.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || !answers[i].grants("private-a") {
			t.Fatalf("lookup %d: %+v, %v", i, answers[i], errs[i])
		}
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("app called %d times for %d identical concurrent lookups, want 1", c, n)
	}
}
