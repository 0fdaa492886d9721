// Fake data: the seed projects, commit authors, messages and branches, and
// the seeded randomness the seed and the simulator draw from.

package demo

import (
	"fmt"
	"time"
)

var seedProjects = []Project{
	{1, "storefront", "acme/storefront", "main"},
	{2, "payments-api", "acme/payments-api", "main"},
	{3, "mobile-app", "acme/mobile-app", "develop"},
	{4, "docs-site", "acme/docs-site", "main"},
}

func (d *Demo) intn(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.IntN(n)
}

func (d *Demo) chance(p float64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.Float64() < p
}

func (d *Demo) jitter(pace time.Duration) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return pace/2 + time.Duration(d.rng.Int64N(int64(pace)+1))
}

type commitInfo struct {
	sha, message, author, topic string
}

// branch is the project's default branch, or now and then a topic branch.
func (c commitInfo) branch(p Project) string {
	if c.topic != "" {
		return c.topic
	}
	return p.Branch
}

var (
	authors  = []string{"ada", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances"}
	messages = []string{
		"Fix flaky checkout test",
		"Bump pgx to v5.7",
		"Add retry to webhook delivery",
		"Refactor cart totals",
		"Speed up asset pipeline",
		"Handle empty search results",
		"Update onboarding copy",
		"Cache exchange rates for 5 minutes",
		"Drop legacy v1 endpoints",
		"Lazy-load product images",
		"Log slow queries over 200 ms",
		"Fix timezone in invoice dates",
		"Add dark mode toggle",
		"Migrate CI to the new runners",
	}
	topics = []string{"feature/checkout-v2", "fix/rounding", "chore/deps", "feature/dark-mode"}
)

func (d *Demo) commit() commitInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := commitInfo{
		sha:     fmt.Sprintf("%07x", d.rng.Uint32()>>4),
		message: messages[d.rng.IntN(len(messages))],
		author:  authors[d.rng.IntN(len(authors))],
	}
	if d.rng.Float64() < 0.3 {
		c.topic = topics[d.rng.IntN(len(topics))]
	}
	return c
}
