// Package loader runs executions on a Workers runtime through the shim Worker
// (worker/). It is the only package that knows about workerd processes. The
// local backend supervises a workerd process on this machine; other backends
// (Cloudflare) implement the same Backend interface.
package loader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// Backend runs executions.
type Backend interface {
	// Execute runs job and calls emit with its events as they happen: start
	// once the runtime has taken the execution, a log per console call, and
	// then exactly one result, also when the guest fails, times out or the
	// runtime dies (a result may come without a start when the execution
	// ended before the runtime answered). It returns an error, having emitted
	// nothing, only when the execution could not start: ErrUnavailable, a
	// *RejectedError, or ctx's error when the caller went away. If emit
	// fails, Execute cancels the execution and returns that error.
	Execute(ctx context.Context, job *Job, emit func(execution.Event) error) error
	// Ready reports whether the backend can take executions now.
	Ready(ctx context.Context) error
	// Close stops the backend and everything it started.
	Close() error
}

// ErrUnavailable means no runtime can take the execution now; the caller may
// retry later.
var ErrUnavailable = errors.New("no runtime is available")

// RejectedError is the runtime refusing a job's configuration before running
// anything (an unknown compatibility flag, a date newer than it supports).
type RejectedError struct {
	Field   string // the request field at fault, if known
	Message string
}

func (e *RejectedError) Error() string {
	if e.Field == "" {
		return "runtime rejected the execution: " + e.Message
	}
	return fmt.Sprintf("runtime rejected %s: %s", e.Field, e.Message)
}

// MaxJobBytes is the largest job the gateway sends a shim, and the bound the
// shim checks a call's Content-Length against before reading its body. The
// gateway hands it to the shim as the MAX_JOB_BYTES binding (the shim's own
// default, for a deployment without one, is the same).
const MaxJobBytes = 32 << 20

// Job is one validated execution, as the shim receives it.
type Job struct {
	ID                 string            `json:"id"`
	Modules            map[string]string `json:"modules"`
	MainModule         string            `json:"mainModule"`
	Env                map[string]any    `json:"env"`
	CompatibilityDate  string            `json:"compatibilityDate"`
	CompatibilityFlags []string          `json:"compatibilityFlags"`
	Outbound           *OutboundPolicy   `json:"outbound"`
	Limits             *execution.Limits `json:"limits,omitempty"`
	Request            GuestRequest      `json:"request"`
	MaxResponseBytes   int64             `json:"maxResponseBytes"`
	MaxLogLineBytes    int               `json:"maxLogLineBytes"`
	MaxLogBytes        int               `json:"maxLogBytes"`
	// Tail asks the shim to learn from the guest's tail why the platform
	// stopped it (the cloudflare backend sets it).
	Tail bool `json:"tail,omitempty"`
	// ReuseKey, for isolate "reuse", names the warm isolate the execution
	// may run in: a hash of everything that defines the isolate and of the
	// caller's key name. Empty for a fresh isolate.
	ReuseKey string `json:"reuseKey,omitempty"`

	// Timeout bounds the whole execution; the backend enforces it.
	Timeout time.Duration `json:"-"`
	// Secrets are the values of the request's secrets (also in Env), masked
	// wherever they would appear in the execution's output.
	Secrets []string `json:"-"`
	// Caller names who sent the job (the API key's name): code that blocked
	// or blew up a runtime is quarantined per caller.
	Caller string `json:"-"`
}

// OutboundPolicy says where an execution's guest may send requests; a nil
// policy means no network at all. Loopback, private and other non-public
// addresses are refused whatever it says.
type OutboundPolicy struct {
	Hosts []string `json:"hosts"`          // "*" or host patterns (internal/egress)
	Deny  []string `json:"deny,omitempty"` // the gateway's own addresses
}

// GuestRequest is the request delivered to the guest's fetch handler.
type GuestRequest struct {
	Method       string            `json:"method"`
	URL          string            `json:"url"`
	Headers      map[string]string `json:"headers"`
	Body         string            `json:"body,omitempty"`
	BodyEncoding string            `json:"bodyEncoding,omitempty"`
}

// failure builds a result event for an execution that did not succeed.
func failure(code execution.Code, format string, args ...any) execution.Event {
	return execution.Event{
		Type: execution.EventResult,
		Result: &execution.Result{
			Error: &execution.Error{Code: code, Message: fmt.Sprintf(format, args...)},
		},
	}
}
