package api

import "time"

// Long-poll defaults, chosen with a margin below the idle/read timeouts of
// common proxies and load balancers, so a poll is always answered by herald
// before a proxy cuts it: nginx's proxy_read_timeout and AWS ALB's idle
// timeout are 60 s, Heroku's router and Google Cloud's load balancer
// (backend timeout) allow 30 s. A poll answered at the proxy's limit is a
// 502/504 for the client instead of an empty answer.
const (
	DefaultPollTimeout    = 20 * time.Second // a poll that names no timeout
	DefaultPollMaxTimeout = 25 * time.Second // the longest a client may ask
)
