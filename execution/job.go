package execution

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Backend runs executions: the one contract between the HTTP API and the
// runtimes (internal/loader/local, internal/loader/cloudflare).
type Backend interface {
	// Execute runs job and calls emit with its events as they happen: start
	// once the runtime has taken the execution, a log per console call, and
	// then exactly one result, also when the guest fails, times out or the
	// runtime dies (a result may come without a start when the execution
	// ended before the runtime answered). It returns an error, having emitted
	// nothing, only when the execution could not start: ErrUnavailable, a
	// *RejectedError, or ctx's error when the caller went away. If emit
	// fails, Execute cancels the execution and returns that error.
	Execute(ctx context.Context, job *Job, emit func(Event) error) error
	// Ready reports whether the backend can take executions now.
	Ready(ctx context.Context) error
	// Drain stops taking new executions and reports not ready; executions
	// already running go on (shutdown calls it first).
	Drain()
	// Close stops the backend and everything it started.
	Close() error
}

// ErrUnavailable means no runtime can take the execution now; the caller may
// retry later.
var ErrUnavailable = errors.New("no runtime is available")

// RejectedError is the runtime refusing a job's configuration before running
// anything (an unknown compatibility flag, a date newer than it supports).
type RejectedError struct {
	Field   string `json:"field,omitempty"` // the request field at fault, if known
	Message string `json:"message"`
}

func (e *RejectedError) Error() string {
	if e.Field == "" {
		return "runtime rejected the execution: " + e.Message
	}
	return fmt.Sprintf("runtime rejected %s: %s", e.Field, e.Message)
}

// Job is one validated execution, as the API hands it to a backend and the
// backend to the shim Worker (its JSON is the shim's wire format).
type Job struct {
	ID         string            `json:"id"`
	Modules    map[string]string `json:"modules"`
	MainModule string            `json:"mainModule"`
	// Packages are modules bundled from the request's dependencies, all
	// JavaScript, by name: each bare specifier the guest imports, and the
	// chunks they share. Wasm are WebAssembly modules by name (base64 in
	// JSON), which the runtime loads as compiled WebAssembly.Modules.
	Packages map[string]string `json:"packages,omitempty"`
	Wasm     map[string][]byte `json:"wasm,omitempty"`
	// Binary are the request's own binary modules by name (WebAssembly
	// or data), beside its text modules in Modules.
	Binary             map[string]BinaryModule `json:"binary,omitempty"`
	Env                map[string]any          `json:"env"`
	CompatibilityDate  string                  `json:"compatibilityDate"`
	CompatibilityFlags []string                `json:"compatibilityFlags"`
	// Egress is where the guest may send requests; nil: no network at all.
	Egress           *EgressPolicy `json:"outbound"`
	Limits           *Limits       `json:"limits,omitempty"`
	Request          GuestRequest  `json:"request"`
	MaxResponseBytes int64         `json:"maxResponseBytes"`
	MaxLogLineBytes  int           `json:"maxLogLineBytes"`
	MaxLogBytes      int           `json:"maxLogBytes"`
	// Tail asks the shim to learn from the guest's tail why the platform
	// stopped it (the cloudflare backend sets it).
	Tail bool `json:"tail,omitempty"`
	// Mode is how the main module runs: ModeWorker or ModeScript (the
	// service has made a plain script a Worker by then; the runtime tells
	// a script's returning nothing from a Worker's).
	Mode string `json:"mode,omitempty"`
	// ReuseKey, for isolate "reuse", names the warm isolate the execution
	// may run in: a hash of everything that defines the isolate and of the
	// caller's key name. Empty for a fresh isolate.
	ReuseKey string `json:"reuseKey,omitempty"`
	// Buffered says the caller wants one result, not a stream: the runtime
	// may answer with every event at once when the execution ends.
	Buffered bool `json:"buffered,omitempty"`
	// Trace is the W3C traceparent of the span of the runtime's call, when
	// the execution is traced: the shim sends each capability call with a
	// traceparent of this trace, naming a span of its own, and reports it
	// (Outgoing.Trace). Empty: no traceparent is sent.
	Trace string `json:"trace,omitempty"`
	// Capabilities are the operator's services the guest may call, by the
	// name of their env binding (the request's capabilities, granted). Their
	// headers travel to the shim in the signed job and are added there,
	// outside the guest's isolate.
	Capabilities map[string]Capability `json:"capabilities,omitempty"`

	// Timeout bounds the whole execution; the backend enforces it.
	Timeout time.Duration `json:"-"`
	// Secrets are the values of the request's secrets (also in Env), masked
	// wherever they would appear in the execution's output.
	Secrets []string `json:"-"`
	// Caller names who sent the job (the API key's name): code that blocked
	// or blew up a runtime is quarantined per caller.
	Caller string `json:"-"`
	// Retry is the request's retry policy: "" (RetryAuto), RetryAlways or
	// RetryNever. A runtime that loses a run to something else runs it
	// again only as it allows.
	Retry string `json:"-"`
	// Dependencies are the packages the request asks for (name → range),
	// then, once they are bundled into Packages, the versions they
	// resolved to (for the result). DependencyKey names the bundle.
	Dependencies  map[string]string `json:"-"`
	DependencyKey string            `json:"-"`
	// Script is the stored script the job runs ("name", then, once
	// loaded, "name@version"); empty for code sent with the request.
	Script string `json:"-"`
}

// SideEffects reports whether the job may have effects outside its isolate:
// it may reach the network or call capabilities.
func (j *Job) SideEffects() bool { return j.Egress != nil || len(j.Capabilities) > 0 }

// EgressPolicy says where an execution's guest may send requests (the
// request's allowOutbound, resolved). Loopback, private and other
// non-public addresses are refused whatever it says.
type EgressPolicy struct {
	Hosts []string `json:"hosts"`          // "*" or host patterns (internal/egress)
	Deny  []string `json:"deny,omitempty"` // the gateway's own addresses
	// DenyHosts are the hosts of the operator's capabilities: a guest
	// reaches them only through its bindings, never by a plain fetch (on
	// Cloudflare they are public hosts no address range refuses).
	DenyHosts []string `json:"denyHosts,omitempty"`
}

// Capability is one operator-defined service (the config's capabilities
// section) as a job carries it to the shim: the guest calls it through its
// env binding and never sees Headers.
type Capability struct {
	URL       string            `json:"url"`               // base URL; calls must lie under it (ends in /)
	Headers   map[string]string `json:"headers,omitempty"` // added by the shim to every call
	Methods   []string          `json:"methods"`           // methods allowed, upper case
	TimeoutMs int64             `json:"timeoutMs"`         // per call
	MaxCalls  int               `json:"maxCalls"`          // per execution
	// ForwardHeaders are the guest's request headers passed on (lower
	// case); empty: the shim's default list.
	ForwardHeaders []string `json:"forwardHeaders,omitempty"`
	// MaxAnswerBytes is the longest answer one call passes to the guest;
	// 0: the shim's default.
	MaxAnswerBytes int64 `json:"maxAnswerBytes,omitempty"`
	// VPC says the shim reaches the service through its binding to the
	// capability's Workers VPC service (worker.Contract.VPCBindingPrefix
	// and the capability's name), never through a network of its own; a
	// shim without that binding refuses the call.
	VPC bool `json:"vpc,omitempty"`
	// Keys are the API key names that may use it; empty: every caller.
	Keys []string `json:"-"`
	// Secrets are the values to mask in every output: the header values
	// and the environment variables spliced into them. The shim masks them
	// in what the service answers before the guest sees it.
	Secrets []string `json:"mask,omitempty"`
}

// CapabilityInfo is what GET /capabilities says of one capability the
// calling key may use: never its headers or its host.
type CapabilityInfo struct {
	Name      string   `json:"name"`
	Methods   []string `json:"methods"`
	BasePath  string   `json:"basePath"`
	MaxCalls  int      `json:"maxCalls"`
	TimeoutMs int64    `json:"timeoutMs"`
	// ForwardHeaders are the request headers a call passes on; others
	// are dropped.
	ForwardHeaders []string `json:"forwardHeaders,omitempty"`
	// MaxAnswerBytes is the longest answer one call passes on.
	MaxAnswerBytes int64 `json:"maxAnswerBytes,omitempty"`
}

// CapabilityList is the body of GET /capabilities.
type CapabilityList struct {
	Capabilities []CapabilityInfo `json:"capabilities"`
}

// capabilityName is how a capability is named: an env binding's name that
// viper keeps as written (it lowers the case of keys).
var capabilityName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ValidCapabilityName reports whether name may name a capability: a
// lower-case letter, then letters, digits or _, at most 64 in all.
func ValidCapabilityName(name string) bool { return capabilityName.MatchString(name) }

// Failure is the result event of an execution that did not succeed.
func Failure(code Code, format string, args ...any) Event {
	return Event{
		Type: EventResult,
		Result: &Result{
			Error: &Error{Code: code, Message: fmt.Sprintf(format, args...)},
		},
	}
}

// RateLimitedError is a runtime's host refusing executions for a while
// (Cloudflare answering the shim's calls with 429): no runtime can take the
// execution before RetryAfter has passed. It is ErrUnavailable.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("the runtime's host is rate limiting the gateway; retry after %v", e.RetryAfter)
}

// Unwrap makes a RateLimitedError ErrUnavailable.
func (e *RateLimitedError) Unwrap() error { return ErrUnavailable }

// BusyError is a runtime with no room for the execution now: as many run
// and wait as it holds, or the wait passed its bound. RetryAfter is when
// room is likely, from how fast executions have been starting. It is
// ErrUnavailable, and Err if set (a runtime's own sentinel).
type BusyError struct {
	Reason     string
	RetryAfter time.Duration
	Err        error
}

func (e *BusyError) Error() string { return e.Reason }

// Unwrap makes a BusyError ErrUnavailable (and Err).
func (e *BusyError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrUnavailable, e.Err}
	}
	return []error{ErrUnavailable}
}
