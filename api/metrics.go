package api

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/longpoll"
	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/stream"
)

// Metrics are herald's Prometheus metrics, served at /metrics. Label sets
// are bounded: transports, sources, error codes and route patterns, never
// channel names or subjects.
type Metrics struct {
	reg *prometheus.Registry

	connections    *prometheus.GaugeVec   // transport
	delivered      *prometheus.CounterVec // transport
	latency        *prometheus.HistogramVec
	resets         *prometheus.CounterVec // transport
	evictions      prometheus.Counter
	replays        *prometheus.CounterVec // source
	replayed       *prometheus.CounterVec // source
	pollsWaiting   prometheus.Gauge
	authFailures   *prometheus.CounterVec // code
	requests       *prometheus.CounterVec // route, status
	seqBatches     prometheus.Counter
	seqEvents      prometheus.Counter
	seqBatchTime   prometheus.Histogram
	seqLeader      prometheus.Gauge
	seqHead        prometheus.Gauge
	seqAsleep      prometheus.Gauge
	seqModes       *prometheus.CounterVec
	logHead        prometheus.GaugeFunc
	headOf         atomic.Pointer[func() int64] // the feed's head, read at scrape time
	logFloor       prometheus.Gauge
	feedReconnects prometheus.Counter
	feedLag        prometheus.Histogram
	fanout         prometheus.Counter
}

// liveWindow separates live deliveries from replays for the latency
// histogram: an event sequenced longer ago than this was replayed.
const liveWindow = time.Minute

// NewMetrics registers herald's metrics and the Go and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	latencyBuckets := []float64{.001, .0025, .005, .01, .015, .02, .03, .05, .075, .1, .25, .5, 1, 2.5}
	m := &Metrics{reg: reg,
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_connections", Help: "Open client connections (SSE streams, waiting or running polls) by transport."}, []string{"transport"}),
		delivered:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_notices_delivered_total", Help: "Notices written to clients, by transport."}, []string{"transport"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_delivery_latency_seconds",
			Help: "From sequencing (event_log.at, a few ms after commit) to the write to the client, for live notices.", Buckets: latencyBuckets}, []string{"transport"}),
		resets:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_resets_total", Help: "Resets sent: the client's cursor was older than the retained history or ahead of the log."}, []string{"transport"}),
		evictions:      prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_evictions_total", Help: "Slow subscribers disconnected because their buffer filled."}),
		replays:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_replays_total", Help: "Backlog reads for resuming clients, by source (ring or database)."}, []string{"source"}),
		replayed:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_replayed_events_total", Help: "Events read for resuming clients, by source."}, []string{"source"}),
		pollsWaiting:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_polls_waiting", Help: "Long-polls parked waiting for a notice."}),
		authFailures:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_auth_failures_total", Help: "Refused subscriptions, by error code."}, []string{"code"}),
		requests:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_http_requests_total", Help: "HTTP requests by route pattern and status."}, []string{"route", "status"}),
		seqBatches:     prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_sequencer_batches_total", Help: "Sequencer steps that moved events into the log."}),
		seqEvents:      prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_sequencer_events_total", Help: "Events sequenced by this replica."}),
		seqBatchTime:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_sequencer_batch_seconds", Help: "Duration of sequencer steps that moved events.", Buckets: latencyBuckets}),
		seqLeader:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_sequencer_leader", Help: "1 while this replica is the sequencer leader."}),
		seqHead:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_sequencer_head", Help: "Highest seq this replica sequenced while leader; max(herald_sequencer_head) - herald_log_head is a replica's lag in events."}),
		seqAsleep:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_sequencer_asleep", Help: "1 while this replica's sequencer leader sleeps until an inbox INSERT notifies it; 0 while it ticks (docs/WAKE.md)."}),
		seqModes:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_sequencer_mode_changes_total", Help: "Times the sequencer leader fell asleep or started ticking, by the mode it entered."}, []string{"mode"}),
		logFloor:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_log_floor", Help: "Lowest retained seq (as of this replica's last retention run)."}),
		feedReconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_feed_reconnects_total", Help: "Times the LISTEN connection was lost and re-established."}),
		feedLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_feed_lag_seconds",
			Help: "From sequencing to this replica's in-memory fan-out.", Buckets: latencyBuckets}),
		fanout: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_fanout_deliveries_total", Help: "Event-to-subscriber hand-offs in the feed."}),
	}
	m.logHead = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_log_head", Help: "Highest seq delivered by this replica's feed."}, func() float64 {
		if h := m.headOf.Load(); h != nil {
			return float64((*h)())
		}
		return 0
	})
	for _, c := range []prometheus.Collector{m.connections, m.delivered, m.latency, m.resets, m.evictions, m.replays,
		m.replayed, m.pollsWaiting, m.authFailures, m.requests, m.seqBatches, m.seqEvents, m.seqBatchTime, m.seqLeader,
		m.seqHead, m.seqAsleep, m.seqModes, buildInfoGauge(ReadBuild()), m.logHead, m.logFloor, m.feedReconnects, m.feedLag, m.fanout,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	for _, t := range []string{"sse", "poll"} {
		m.connections.WithLabelValues(t)
		m.delivered.WithLabelValues(t)
		m.resets.WithLabelValues(t)
	}
	for _, mode := range []string{"asleep", "ticking"} {
		m.seqModes.WithLabelValues(mode)
	}
	for _, s := range []string{"ring", "database"} {
		m.replays.WithLabelValues(s)
		m.replayed.WithLabelValues(s)
	}
	return m
}

// Sequencer sets the sequencer's hooks (after any already set).
func (m *Metrics) Sequencer(o *store.SequencerOptions) {
	prevBatch, prevLeader, prevRetention, prevSleep := o.OnBatch, o.OnLeader, o.OnRetention, o.OnSleep
	o.OnSleep = func(asleep bool) {
		if prevSleep != nil {
			prevSleep(asleep)
		}
		if asleep {
			m.seqAsleep.Set(1)
			m.seqModes.WithLabelValues("asleep").Inc()
		} else {
			m.seqAsleep.Set(0)
			m.seqModes.WithLabelValues("ticking").Inc()
		}
	}
	o.OnBatch = func(rows int, head int64, took time.Duration) {
		if prevBatch != nil {
			prevBatch(rows, head, took)
		}
		m.seqBatches.Inc()
		m.seqEvents.Add(float64(rows))
		m.seqBatchTime.Observe(took.Seconds())
		m.seqHead.Set(float64(head))
	}
	o.OnLeader = func(leader bool) {
		if prevLeader != nil {
			prevLeader(leader)
		}
		if leader {
			m.seqLeader.Set(1)
		} else {
			m.seqLeader.Set(0)
			m.seqAsleep.Set(0)
		}
	}
	o.OnRetention = func(floor int64, dropped int) {
		if prevRetention != nil {
			prevRetention(floor, dropped)
		}
		m.logFloor.Set(float64(floor))
	}
}

// feedHead makes herald_log_head read head at scrape time. A gauge set
// from dispatched batches missed a head the feed loaded when it connected
// (rows sequenced before it started), and stayed 0 until the next notice.
func (m *Metrics) feedHead(head func() int64) { m.headOf.Store(&head) }

// Feed sets the feed's hooks (after any already set).
func (m *Metrics) Feed(o *store.FeedOptions) {
	prevReconnect, prevEvict, prevDispatch, prevReplay := o.OnReconnect, o.OnEvict, o.OnDispatch, o.OnReplay
	o.OnReconnect = func() {
		if prevReconnect != nil {
			prevReconnect()
		}
		m.feedReconnects.Inc()
	}
	o.OnEvict = func() {
		if prevEvict != nil {
			prevEvict()
		}
		m.evictions.Inc()
	}
	o.OnDispatch = func(events []*herald.Event, deliveries int) {
		if prevDispatch != nil {
			prevDispatch(events, deliveries)
		}
		m.fanout.Add(float64(deliveries))
		if n := len(events); n > 0 {
			now := time.Now()
			for _, e := range events {
				m.feedLag.Observe(now.Sub(e.At).Seconds())
			}
		}
	}
	o.OnReplay = func(fromRing bool, n int) {
		if prevReplay != nil {
			prevReplay(fromRing, n)
		}
		src := "database"
		if fromRing {
			src = "ring"
		}
		m.replays.WithLabelValues(src).Inc()
		m.replayed.WithLabelValues(src).Add(float64(n))
	}
}

func (m *Metrics) delivery(transport string) func(int, []*herald.Event) {
	c, h := m.delivered.WithLabelValues(transport), m.latency.WithLabelValues(transport)
	return func(n int, events []*herald.Event) {
		c.Add(float64(n))
		now := time.Now()
		for _, e := range events {
			if d := now.Sub(e.At); d < liveWindow {
				h.Observe(d.Seconds())
			}
		}
	}
}

func (m *Metrics) streamHooks() stream.Hooks {
	return stream.Hooks{
		Delivered: m.delivery("sse"),
		Reset:     m.resets.WithLabelValues("sse").Inc,
		Evicted:   func() {}, // counted by the feed's OnEvict
	}
}

func (m *Metrics) pollHooks() longpoll.Hooks {
	return longpoll.Hooks{
		Delivered: m.delivery("poll"),
		Reset:     m.resets.WithLabelValues("poll").Inc,
		Waiting: func() func() {
			m.pollsWaiting.Inc()
			return m.pollsWaiting.Dec
		},
	}
}

// connection counts an open connection until the returned func runs.
func (m *Metrics) connection(transport string) func() {
	if m == nil {
		return func() {}
	}
	g := m.connections.WithLabelValues(transport)
	g.Inc()
	return g.Dec
}

func (m *Metrics) authFailed(code string) {
	if m != nil {
		m.authFailures.WithLabelValues(code).Inc()
	}
}

// middleware counts requests by route pattern (bounded) and status.
func (m *Metrics) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(c.Writer.Status())).Inc()
	}
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
