// Package execution is the gateway's domain package. It holds the types of
// its HTTP contract (openapi.yaml): the body of POST /execute, the result
// and its error codes, the events of a streamed execution and the problem
// codes of a refusal; and the contract between the API and the runtimes: a
// validated Job and the Backend that runs it. Server, runtimes and clients
// share them so that they cannot drift apart.
package execution

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Request is the body of POST /execute. Exactly one of Code, Modules and
// Script is set.
type Request struct {
	Code       string            `json:"code,omitempty"`
	Language   string            `json:"language,omitempty"`
	Modules    map[string]string `json:"modules,omitempty"`
	MainModule string            `json:"mainModule,omitempty"`
	// Dependencies are npm packages the modules import, name → version
	// range, exact version or dist-tag (a package.json among the modules
	// may give them instead).
	Dependencies map[string]string `json:"dependencies,omitempty"`
	// Script runs a stored script ("name" for its latest version, or
	// "name@version") instead of code or modules.
	Script             string            `json:"script,omitempty"`
	Env                map[string]any    `json:"env,omitempty"`
	Secrets            map[string]string `json:"secrets,omitempty"`
	AllowOutbound      Outbound          `json:"allowOutbound,omitzero"`
	CompatibilityDate  string            `json:"compatibilityDate,omitempty"`
	CompatibilityFlags []string          `json:"compatibilityFlags,omitempty"`
	TimeoutMs          int               `json:"timeoutMs,omitempty"`
	Limits             *Limits           `json:"limits,omitempty"`
	Request            *GuestRequest     `json:"request,omitempty"`
	Isolate            string            `json:"isolate,omitempty"`
	// Capabilities names the operator's services the guest may call
	// through env.<name> (GET /capabilities lists them).
	Capabilities []string `json:"capabilities,omitempty"`
	// Retry says whether the execution runs again when its run is lost to
	// something else (its runtime process or its gateway died): RetryAuto
	// (the default, also ""), RetryAlways or RetryNever.
	Retry string `json:"retry,omitempty"`
}

// Retry policies of Request.Retry.
const (
	// RetryAuto runs an execution again only if it cannot have had a side
	// effect: no outbound request or capability call made yet (after a
	// gateway died, none allowed at all, since what the dead gateway saw
	// is lost).
	RetryAuto = "auto"
	// RetryAlways runs it again whatever it did (at most 3 runs in all):
	// the request says it is idempotent. Its result lists the calls of
	// every run, each marked with its run.
	RetryAlways = "always"
	// RetryNever never runs it again: a lost run ends runtime_crashed.
	RetryNever = "never"
)

// Limits are per-execution resource limits, enforced by Cloudflare on the
// cloudflare backend. Zero means the server's setting.
type Limits struct {
	CPUMs       int `json:"cpuMs,omitempty"`
	SubRequests int `json:"subRequests,omitempty"`
}

// GuestRequest is the HTTP request delivered to the guest's fetch handler.
type GuestRequest struct {
	Method       string            `json:"method,omitempty"`
	URL          string            `json:"url,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	Body         string            `json:"body,omitempty"`
	BodyEncoding string            `json:"bodyEncoding,omitempty"`
}

// Body encodings of GuestRequest and Response bodies.
const (
	EncodingUTF8   = "utf8"
	EncodingBase64 = "base64"
)

// Outbound is the allowOutbound field: false (no network), true (the public
// internet), or a list of host patterns.
type Outbound struct {
	All   bool
	Hosts []string
}

// Allowed reports whether any network access is allowed.
func (o Outbound) Allowed() bool { return o.All || len(o.Hosts) > 0 }

// IsZero reports whether o is the default (no network).
func (o Outbound) IsZero() bool { return !o.Allowed() }

// MarshalJSON encodes o as a boolean or a list of hosts.
func (o Outbound) MarshalJSON() ([]byte, error) {
	if len(o.Hosts) > 0 {
		return json.Marshal(o.Hosts)
	}
	return json.Marshal(o.All)
}

// UnmarshalJSON accepts a boolean or a list of host strings.
func (o *Outbound) UnmarshalJSON(data []byte) error {
	var all bool
	if err := json.Unmarshal(data, &all); err == nil {
		*o = Outbound{All: all}
		return nil
	}
	var hosts []string
	if err := json.Unmarshal(data, &hosts); err != nil {
		return fmt.Errorf("allowOutbound must be a boolean or a list of host names")
	}
	*o = Outbound{Hosts: hosts}
	return nil
}

// Result is what an execution produced: the JSON response of POST /execute,
// and (without Logs) the final event of a stream.
type Result struct {
	ID      string `json:"id"`
	Success bool   `json:"success"`
	// Mode is how the main module ran: ModeWorker (a module with exports,
	// its default one with a fetch handler) or ModeScript (a plain script,
	// the body of a fetch handler).
	Mode     string    `json:"mode,omitempty"`
	Stdout   string    `json:"stdout"`
	Stderr   string    `json:"stderr"`
	Logs     []Log     `json:"logs,omitzero"`
	Response *Response `json:"response,omitempty"`
	// ReturnValue is what the code returned, as JSON, when it was not a
	// Response (a plain script's return value, or a Worker's fetch handler
	// returning something else); absent when it returned nothing.
	ReturnValue json.RawMessage `json:"returnValue,omitempty"`
	Error       *Error          `json:"error,omitempty"`
	Truncated   bool            `json:"truncated"`
	Outbound    []Outgoing      `json:"outbound"`
	Warm        bool            `json:"warm"`
	DurationMs  float64         `json:"durationMs"`
	// Dependencies are the versions that ran of the packages the request
	// (or its script) asked for.
	Dependencies map[string]string `json:"dependencies,omitempty"`
}

// Modes of an execution's main module (Result.Mode).
const (
	// ModeWorker: a module that exports something (its default export
	// has a fetch handler); it runs as a Worker.
	ModeWorker = "worker"
	// ModeScript: code with no export, run as the body of an async
	// fetch handler (request, env and ctx in scope, top-level await and
	// return allowed); what it returns is the result's returnValue.
	ModeScript = "script"
)

// Log is one console call of the guest.
type Log struct {
	Level   string    `json:"level"`
	Stream  string    `json:"stream"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
	// Truncated marks a message cut at the server's line limit.
	Truncated bool `json:"truncated,omitempty"`
}

// The streams a console line belongs to. Which level goes to which is the
// shim's contract with the gateway, worker/src/contract.json (levelStreams):
// the gateway refuses to start if it names another stream.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// Response is what the guest's fetch handler returned.
type Response struct {
	Status       int               `json:"status"`
	Headers      map[string]string `json:"headers"`
	Body         string            `json:"body"`
	BodyEncoding string            `json:"bodyEncoding"`
}

// Error says why an execution did not succeed.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"`
}

// Outgoing is one outbound request the guest attempted.
type Outgoing struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Status int    `json:"status,omitempty"`
	Denied bool   `json:"denied,omitempty"`
	// Capability names the capability a call went through; then URL is
	// the path (and query) on its service.
	Capability string `json:"capability,omitempty"`
	// Run is which run of the execution made it (1, 2, …), set when the
	// execution ran more than once (see Request.Retry).
	Run int `json:"run,omitempty"`
	// Trace is the shim's report of a capability call it sent with a
	// traceparent (the job was traced). The gateway records the call's span
	// from it and takes it out: it is never part of a result.
	Trace *CallTrace `json:"trace,omitempty"`
}

// CallTrace is how the shim reports a traced capability call: the span id
// its traceparent named, when the call started (Unix milliseconds) and how
// long it took until the service's answer, or its failure (milliseconds).
type CallTrace struct {
	SpanID string  `json:"spanId"`
	Start  float64 `json:"start"`
	Ms     float64 `json:"ms"`
}

// Code is the stable machine-readable reason an execution failed.
type Code string

// Error codes of Result.Error: those the shim sends and those only the
// gateway gives, as worker/src/contract.json lists them (errorCodes,
// gatewayErrorCodes), which the shim reads. A test checks that the file
// and these constants hold the same codes, and the gateway refuses to
// start if the file has one Known does not take.
const (
	CodeException       Code = "exception"
	CodeSyntaxError     Code = "syntax_error"
	CodeInvalidModule   Code = "invalid_module"
	CodeTimeout         Code = "timeout"
	CodeCPULimit        Code = "cpu_limit"
	CodeMemoryLimit     Code = "memory_limit"
	CodeSubrequestLimit Code = "subrequest_limit"
	CodeOutputLimit     Code = "output_limit"
	CodeRuntimeCrashed  Code = "runtime_crashed"
	// CodeRuntimeUnavailable is in openapi.yaml's ErrorCode enum, so it
	// stays a known code, but no execution ends with it: a runtime that
	// cannot take an execution is the 503 problem ProblemRuntimeUnavailable,
	// before anything runs.
	CodeRuntimeUnavailable Code = "runtime_unavailable"
)

// Known reports whether c is one of the codes above.
func (c Code) Known() bool {
	switch c {
	case CodeException, CodeSyntaxError, CodeInvalidModule, CodeTimeout, CodeCPULimit, CodeMemoryLimit,
		CodeSubrequestLimit, CodeOutputLimit, CodeRuntimeCrashed, CodeRuntimeUnavailable:
		return true
	}
	return false
}

// Event types of a streamed execution.
const (
	EventStart  = "start"
	EventLog    = "log"
	EventResult = "result"
	// EventRestart says the gateway runs the execution again from the start
	// (its runtime process was lost because of another execution): a client
	// discards the logs it has shown; the logs of the new run follow.
	EventRestart = "restart"
	// EventOutbound announces an outbound request or capability call of the
	// guest as it is made, before it is decided or sent (the result's
	// outbound says how each ended). A restart does not void them: an
	// execution run again lists the calls of every run.
	EventOutbound = "outbound"
	// EventInstall reports the execution's dependencies: what is resolved
	// (phase InstallResolving), then what they resolved to (InstallDone),
	// both before the runtime starts it.
	EventInstall = "install"
)

// Phases of an install event.
const (
	InstallResolving = "resolving"
	InstallDone      = "done"
)

// Install is an install event's report.
type Install struct {
	Phase string `json:"phase"`
	// Packages are the packages asked for with their ranges (resolving),
	// then with the versions they resolved to (done).
	Packages map[string]string `json:"packages"`
	// Cached says the set came from the gateway's cache (done).
	Cached bool `json:"cached,omitempty"`
	// DurationMs is how long resolving and bundling took (done).
	DurationMs float64 `json:"durationMs,omitempty"`
}

// String says what an install event reports, for people: "resolving
// a@^1, b@2", then "dependencies a@1.2.0, b@2.0.1 (in 812 ms)" or "(from
// the gateway's cache)".
func (in *Install) String() string {
	names := make([]string, 0, len(in.Packages))
	for name, v := range in.Packages {
		names = append(names, name+"@"+v)
	}
	slices.Sort(names)
	if in.Phase != InstallDone {
		return "resolving " + strings.Join(names, ", ")
	}
	how := fmt.Sprintf("in %.0f ms", in.DurationMs)
	if in.Cached {
		how = "from the gateway's cache"
	}
	return "dependencies " + strings.Join(names, ", ") + " (" + how + ")"
}

// Event is one line of a streamed execution: start, then a log per console
// call, then exactly one result. A restart may come before the result, at
// most twice; the logs before it are void.
type Event struct {
	Type   string
	ID     string    // start
	Log    *Log      // log
	Result *Result   // result (Logs unset)
	Reason string    // restart: why (a Code, e.g. runtime_crashed)
	Call   *Outgoing // outbound: the request (no status yet)
	// Install is an install event's report.
	Install *Install
	// ResultJSON, on a result event the service hands a front door, is
	// the result with its logs, encoded as its record stores it: a front
	// door answering with the whole result sends it as it is.
	ResultJSON []byte
}

// MarshalResult encodes r as the API answers with it: compact JSON, HTML
// characters as they are.
func MarshalResult(r *Result) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// MarshalJSON renders the event as {"type": ..., fields of its payload}.
func (e Event) MarshalJSON() ([]byte, error) {
	switch e.Type {
	case EventStart:
		return json.Marshal(struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		}{e.Type, e.ID})
	case EventLog:
		return json.Marshal(struct {
			Type string `json:"type"`
			*Log
		}{e.Type, e.Log})
	case EventResult:
		return json.Marshal(struct {
			Type string `json:"type"`
			*Result
		}{e.Type, e.Result})
	case EventRestart:
		return json.Marshal(struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		}{e.Type, e.Reason})
	case EventOutbound:
		return json.Marshal(struct {
			Type string `json:"type"`
			*Outgoing
		}{e.Type, e.Call})
	case EventInstall:
		return json.Marshal(struct {
			Type string `json:"type"`
			*Install
		}{e.Type, e.Install})
	}
	return nil, fmt.Errorf("unknown event type %q", e.Type)
}

// logPrefix starts a log event as the shim and MarshalJSON write it.
var logPrefix = []byte(`{"type":"log",`)

// UnmarshalJSON reads an event written by MarshalJSON.
func (e *Event) UnmarshalJSON(data []byte) error {
	if bytes.HasPrefix(data, logPrefix) {
		// The commonest event, read in one pass, not two: its type and its
		// fields together. The type is checked as the general path checks
		// it (the last "type" counts), which any other outcome takes.
		var v struct {
			Type   string `json:"type"`
			ID     string `json:"id"`
			Reason string `json:"reason"`
			Log
		}
		if err := json.Unmarshal(data, &v); err == nil && v.Type == EventLog {
			*e = Event{Type: EventLog, Log: &v.Log}
			return nil
		}
	}
	return e.unmarshalByType(data)
}

// unmarshalByType reads an event in two passes: its type, then its fields.
func (e *Event) unmarshalByType(data []byte) error {
	var head struct {
		Type   string `json:"type"`
		ID     string `json:"id"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return err
	}
	*e = Event{Type: head.Type}
	switch head.Type {
	case EventStart:
		e.ID = head.ID
	case EventRestart:
		e.Reason = head.Reason
	case EventLog:
		e.Log = new(Log)
		return json.Unmarshal(data, e.Log)
	case EventResult:
		e.Result = new(Result)
		return json.Unmarshal(data, e.Result)
	case EventOutbound:
		e.Call = new(Outgoing)
		return json.Unmarshal(data, e.Call)
	case EventInstall:
		e.Install = new(Install)
		return json.Unmarshal(data, e.Install)
	default:
		return fmt.Errorf("unknown event type %q", head.Type)
	}
	return nil
}

// RequestFields are the members of a Request (a POST /execute body), in
// its order: derived from Request's own definition, the one list the
// validator, openapi.yaml and the MCP tool's schema are checked against.
func RequestFields() []string {
	t := reflect.TypeFor[Request]()
	fields := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	return fields
}
