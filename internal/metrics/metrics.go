// Package metrics defines the gateway's Prometheus metrics, served at
// GET /metrics. Every metric is declared here, so docs/operations.md can list
// them from one place.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the gateway's collectors and the registry serving them.
type Metrics struct {
	registry *prometheus.Registry

	Executions          *prometheus.CounterVec   // outcome: success or an error code
	ExecutionSeconds    *prometheus.HistogramVec // outcome
	IsolateStartSeconds prometheus.Histogram     // request accepted to the runtime's start
	InFlight            prometheus.Gauge
	LogBytes            prometheus.Counter
	Truncations         prometheus.Counter
	Outbound            *prometheus.CounterVec // result: allowed or denied
	AuthFailures        *prometheus.CounterVec // key: a revoked key's name, or "unknown"
	Limited             *prometheus.CounterVec // key, kind: rate or concurrency
	RuntimeEvents       *prometheus.CounterVec // event: restart or recycle; reason
	SlowClients         *prometheus.CounterVec // reason: buffer_full, write_timeout or lifetime
	RuntimeLogDropped   prometheus.Counter     // runtime log lines over the rate limit
	HTTPRequests        *prometheus.CounterVec // route, method, status
	HTTPSeconds         *prometheus.HistogramVec
	StorageFailing      prometheus.Gauge   // 1 while the store refuses writes
	RecordWritesFailed  prometheus.Counter // writes of records the store refused
	RecordsEvicted      prometheus.Counter // records deleted to keep a key under its storage bound
	RecordsLost         prometheus.Counter // failed writes given up (the retry backlog was full)
}

// New creates the metrics, with Go and process collectors, in a registry of
// their own.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		Executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_executions_total",
			Help: "Executions that ran, by outcome: success, or the error code (exception, timeout, runtime_crashed, ...).",
		}, []string{"outcome"}),
		ExecutionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_execution_duration_seconds",
			Help:    "Wall time of executions, by outcome.",
			Buckets: []float64{.005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"outcome"}),
		IsolateStartSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gateway_isolate_start_seconds",
			Help:    "Time from sending an execution to the runtime until its isolate was loaded and running.",
			Buckets: []float64{.002, .005, .01, .02, .05, .1, .25, .5, 1, 5},
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_executions_in_flight",
			Help: "Executions running now.",
		}),
		LogBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_log_bytes_total",
			Help: "Bytes of console output captured and returned.",
		}),
		Truncations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_truncated_executions_total",
			Help: "Executions whose output was cut at a cap (log line, total log, response body).",
		}),
		Outbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_outbound_requests_total",
			Help: "Outbound requests guests attempted, by result: allowed or denied.",
		}, []string{"result"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_auth_failures_total",
			Help: "Requests refused 401, by key name (revoked keys) or \"unknown\".",
		}, []string{"key"}),
		Limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_quota_refusals_total",
			Help: "Requests refused 429, by key name and kind (rate or concurrency).",
		}, []string{"key", "kind"}),
		RuntimeEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_runtime_replacements_total",
			Help: "Runtime processes replaced, by event (restart or recycle) and reason (exited, killed, executions, memory).",
		}, []string{"event", "reason"}),
		SlowClients: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_slow_client_drops_total",
			Help: "Connections dropped because the client read too slowly, by reason: buffer_full (the execution was cancelled), write_timeout or lifetime.",
		}, []string{"reason"}),
		RuntimeLogDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_runtime_log_lines_dropped_total",
			Help: "Lines of the runtime's own output (workerd warnings) not logged because a process exceeded its log rate.",
		}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		HTTPSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_http_request_duration_seconds",
			Help:    "HTTP request duration by route pattern and method (streams last as long as their executions).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		StorageFailing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_storage_failing",
			Help: "1 while the store refuses writes (a full disk, a database down): /readyz answers 503 and executions that need a record are refused.",
		}),
		RecordWritesFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_record_writes_failed_total",
			Help: "Writes of execution records the store refused; each is kept and tried again until it is stored.",
		}),
		RecordsEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_records_evicted_total",
			Help: "Records deleted, oldest first, to keep an API key under its storage bound (storage.max_bytes_per_key).",
		}),
		RecordsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_record_writes_lost_total",
			Help: "Writes of execution records given up while the store refused writes, because the backlog kept for retrying them was full.",
		}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Executions, m.ExecutionSeconds, m.IsolateStartSeconds, m.InFlight, m.LogBytes,
		m.Truncations, m.Outbound, m.AuthFailures, m.Limited, m.RuntimeEvents, m.SlowClients, m.RuntimeLogDropped,
		m.HTTPRequests, m.HTTPSeconds, m.StorageFailing, m.RecordWritesFailed, m.RecordsEvicted, m.RecordsLost,
	)
	return m
}

// RuntimeStats is what a backend reports about its runtime for the gauges.
type RuntimeStats struct {
	Processes map[string]int // by state: ready, unresponsive, draining
	Queued    int            // executions waiting for a process
	Running   int            // executions running on the processes
	// PerExecution is what admission estimates one execution holds in its
	// process (bytes).
	PerExecution int64
}

// WatchRuntime registers gauges read from stats at each scrape.
func (m *Metrics) WatchRuntime(stats func() RuntimeStats) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_executions_queued",
		Help: "Executions waiting for a free runtime process.",
	}, func() float64 { return float64(stats().Queued) }))
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_runtime_executions",
		Help: "Executions running on the runtime processes now (admitted, not queued).",
	}, func() float64 { return float64(stats().Running) }))
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_runtime_execution_bytes",
		Help: "What admission estimates one execution holds in its runtime process, learned from what the processes grow per execution in flight.",
	}, func() float64 { return float64(stats().PerExecution) }))
	for _, state := range []string{"ready", "unresponsive", "draining", "isolation", "spare"} {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "gateway_runtime_processes",
			Help:        "workerd processes by state: ready (taking executions), unresponsive (missed a probe), draining (being replaced), isolation (running quarantined code or lone re-runs, one at a time), spare (started and idle, to replace a lost process at once).",
			ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 { return float64(stats().Processes[state]) }))
	}
}

// RuntimeEvent counts a replaced runtime process.
func (m *Metrics) RuntimeEvent(event, reason string) {
	m.RuntimeEvents.WithLabelValues(event, reason).Inc()
}

// RuntimeLogLinesDropped counts runtime log lines the rate limit dropped.
func (m *Metrics) RuntimeLogLinesDropped(lines int) {
	m.RuntimeLogDropped.Add(float64(lines))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}
