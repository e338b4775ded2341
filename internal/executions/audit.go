package executions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/metrics"
)

// observe counts a finished execution in the metrics.
func observe(m *metrics.Metrics, res *execution.Result, logBytes int) {
	outcome := "success"
	if res.Error != nil {
		outcome = string(knownCode(res.Error.Code))
	}
	m.Executions.WithLabelValues(outcome).Inc()
	m.ExecutionSeconds.WithLabelValues(outcome).Observe(res.DurationMs / 1000)
	m.LogBytes.Add(float64(logBytes))
	if res.Truncated {
		m.Truncations.Inc()
	}
	for _, o := range res.Outbound {
		if o.Denied {
			m.Outbound.WithLabelValues("denied").Inc()
		} else {
			m.Outbound.WithLabelValues("allowed").Inc()
		}
	}
}

// knownCode is c if it is one of the error codes, else exception: metric
// labels and the audit line take only codes from the fixed set, whatever a
// backend let through.
func knownCode(c execution.Code) execution.Code {
	if c.Known() {
		return c
	}
	return execution.CodeException
}

// audit writes the execution's audit line: who (the key name is on the
// request's logger), what code (its hash, never its text), which options,
// and how it ended. Env and secret values are never logged.
func audit(log *zerolog.Logger, job *execution.Job, hash string, res *execution.Result, lines int) {
	outbound := "none"
	if job.Egress != nil {
		outbound = strings.Join(job.Egress.Hosts, ",")
	}
	ev := log.Info().
		Str("code_sha256", hash).
		Int("modules", len(job.Modules)).
		Str("compatibility_date", job.CompatibilityDate).
		Strs("compatibility_flags", job.CompatibilityFlags).
		Str("outbound", outbound).
		Strs("capabilities", slices.Sorted(maps.Keys(job.Capabilities))).
		Int64("timeout_ms", job.Timeout.Milliseconds()).
		Int("env", len(job.Env)).
		Bool("success", res.Success).
		Float64("execution_ms", res.DurationMs).
		Int("logs", lines).
		Int("outbound_requests", len(res.Outbound)).
		Bool("truncated", res.Truncated)
	if res.Error != nil {
		ev = ev.Str("error_code", string(knownCode(res.Error.Code)))
	}
	ev.Msg("execution finished")
}

// reuseKey names the warm isolate an execution may share: SHA-256 over the
// caller's key name (an isolate is never shared between two API keys) and
// everything the isolate is made of: modules, env and secrets,
// compatibility date and flags, outbound policy, limits, output caps and
// capabilities.
// The request the guest gets is not part of it.
func reuseKey(caller string, job *execution.Job) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s", len(caller), caller)
	identity := struct {
		Modules            map[string]string
		MainModule         string
		Env                map[string]any
		CompatibilityDate  string
		CompatibilityFlags []string
		Outbound           *execution.EgressPolicy
		Limits             *execution.Limits
		Caps               [3]int64
		Capabilities       map[string]execution.Capability
		Dependencies       string // the bundle of the dependencies: its set and entries
		Script             string // a stored script's name@version: its modules are that version's
	}{job.Modules, job.MainModule, job.Env, job.CompatibilityDate, job.CompatibilityFlags, job.Egress, job.Limits,
		[3]int64{job.MaxResponseBytes, int64(job.MaxLogLineBytes), int64(job.MaxLogBytes)}, job.Capabilities, job.DependencyKey, job.Script}
	if job.Script != "" {
		identity.Modules = nil // the version names them, and hashing them again would cost a script's megabytes
	}
	_ = json.NewEncoder(h).Encode(identity) // map keys are sorted, so equal jobs hash equal
	return "r_" + hex.EncodeToString(h.Sum(nil))
}

// codeHash identifies an execution's code: SHA-256 over its modules' names
// and sources in name order.
func codeHash(job *execution.Job) string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(job.Modules)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(name), name, len(job.Modules[name]), job.Modules[name])
	}
	return hex.EncodeToString(h.Sum(nil))
}
