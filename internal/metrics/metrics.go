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
	QueueDepth          prometheus.Gauge   // executions queued (POST /executions), all gateways on the store
	QueueWait           prometheus.Histogram
	Callbacks           *prometheus.CounterVec // outcome: delivered, failed
	CallbackAttempts    *prometheus.CounterVec // result: 2xx, 3xx, 4xx, 5xx, no_answer
	Recovered           *prometheus.CounterVec // action: requeued, ended
	LeaseLost           prometheus.Counter
	Dependencies        *prometheus.CounterVec   // outcome: cached, resolved, or the refusal's kind
	DependencySeconds   *prometheus.HistogramVec // source: cache or registry
	BundleSeconds       prometheus.Histogram
	ScriptVersions      *prometheus.CounterVec // outcome: created, unchanged, scripts_full
	ScriptRuns          *prometheus.CounterVec // decoded: cached or store
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
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_queue_depth",
			Help: "Executions queued by POST /executions and not yet claimed, all gateways on the store together (every gateway reports the same number); read every lease renewal (storage lease TTL / 3).",
		}),
		QueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gateway_queue_wait_seconds",
			Help:    "Time from POST /executions until a gateway's worker claimed the execution, observed by the gateway that claimed it (first claims only; a run again after a crash is not counted).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		Callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_callbacks_total",
			Help: "Webhook deliveries to callback URLs that ended, by outcome: delivered or failed (given up).",
		}, []string{"outcome"}),
		CallbackAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_callback_attempts_total",
			Help: "Webhook attempts (POSTs to callback URLs), by result: the receiver's status class (2xx, 3xx, 4xx, 5xx) or no_answer (refused address, connection error, timeout).",
		}, []string{"result"}),
		Recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_recovered_executions_total",
			Help: "Executions this gateway took over from a gateway whose lease expired (it died or lost the store), by action: requeued (to run again) or ended (runtime_crashed; also counted in gateway_executions_total).",
		}, []string{"action"}),
		LeaseLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_lease_lost_total",
			Help: "Times this gateway found its lease taken over (it could not renew it in time): the executions it ran were stopped here, for the gateway that recovered them.",
		}),
		Dependencies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_dependency_resolutions_total",
			Help: "Resolutions of an execution's or a script's npm dependencies, by outcome: cached (the set was in the dependency cache), resolved (npm asked the registry), or refused: not_found, denied, too_large, unavailable (the registry failed or was too slow, or packages.offline), invalid.",
		}, []string{"outcome"}),
		DependencySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_dependency_resolution_seconds",
			Help:    "Time to resolve a set of dependencies that resolved, by source: cache or registry.",
			Buckets: []float64{.001, .005, .025, .1, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"source"}),
		BundleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gateway_dependency_bundle_seconds",
			Help:    "Time to have the bundle of a resolved set for an execution's or a script's imports (a bundle kept in memory or on disk, or esbuild run).",
			Buckets: []float64{.001, .005, .025, .1, .5, 1, 2.5, 5, 10, 30},
		}),
		ScriptVersions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_script_versions_total",
			Help: "PUT /scripts/{name} that got as far as the store, by outcome: created (a new version), unchanged (that content was stored already), scripts_full (refused: the key's scripts take storage.max_script_bytes_per_key).",
		}, []string{"outcome"}),
		ScriptRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_script_runs_total",
			Help: "Executions of stored scripts, by where the version was decoded from: cached (this gateway's memory) or store.",
		}, []string{"decoded"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Executions, m.ExecutionSeconds, m.IsolateStartSeconds, m.InFlight, m.LogBytes,
		m.Truncations, m.Outbound, m.AuthFailures, m.Limited, m.RuntimeEvents, m.SlowClients, m.RuntimeLogDropped,
		m.HTTPRequests, m.HTTPSeconds, m.StorageFailing, m.RecordWritesFailed, m.RecordsEvicted, m.RecordsLost,
		m.QueueDepth, m.QueueWait, m.Callbacks, m.CallbackAttempts, m.Recovered, m.LeaseLost,
		m.Dependencies, m.DependencySeconds, m.BundleSeconds, m.ScriptVersions, m.ScriptRuns,
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

// DependencyCacheStats is what the dependency cache holds.
type DependencyCacheStats struct {
	Bytes     int64 // on disk
	Sets      int
	Evictions int64 // sets evicted since the start
}

// WatchDependencyCache registers the dependency cache's gauges and its
// evictions counter, read from stats at each scrape.
func (m *Metrics) WatchDependencyCache(stats func() DependencyCacheStats) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_dependency_cache_bytes",
		Help: "Bytes the dependency cache takes on disk (resolved sets with their resolutions and bundles); bounded by packages.cache_max_bytes.",
	}, func() float64 { return float64(stats().Bytes) }))
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_dependency_cache_sets",
		Help: "Resolved sets of dependencies in the dependency cache.",
	}, func() float64 { return float64(stats().Sets) }))
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gateway_dependency_cache_evictions_total",
		Help: "Sets of dependencies evicted from the dependency cache to keep it within packages.cache_max_bytes.",
	}, func() float64 { return float64(stats().Evictions) }))
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
