package execution

import (
	"context"
	"encoding/json"
)

// Service is what the front doors (the HTTP API, the MCP server, and
// whatever comes next) do with executions. One implementation,
// internal/executions, stands between them and the runtimes and the store:
// it validates and grants, keeps the quotas, runs, records, audits and
// counts. A front door decodes, calls it, and encodes what it answers.
//
// Every method takes the Caller the front door authenticated, and answers
// only for that caller's executions: another caller's are as unknown as
// ones that never were (ProblemNotFound). A refusal is a *Problem, whose
// Code says why (the codes are listed with each method); any other error
// is the service's own failure (ProblemInternal).
type Service interface {
	// Run validates req and runs it for c now, handing each event to emit
	// as it happens: start, then log, outbound and restart events, then
	// exactly one result, which comes only once the execution's record is
	// stored (a caller may read the record as soon as it has the result).
	// It returns a *Problem, having emitted nothing, when the request is
	// refused: ProblemInvalidRequest, ProblemRateLimited,
	// ProblemConcurrencyLimited, ProblemRuntimeUnavailable or
	// ProblemStorageUnavailable. After events it returns
	// ProblemRecordNotStored (the execution ran, its record could not be
	// stored, and no result was emitted), or emit's error, which cancels the
	// execution, or ctx's when the caller went away.
	Run(ctx context.Context, c Caller, req RunRequest, emit func(Event) error) error
	// Submit validates req (a POST /executions body) and queues it for c:
	// ProblemInvalidRequest, ProblemRateLimited, ProblemQueueFull,
	// ProblemQueueLimited, ProblemStorageUnavailable.
	Submit(ctx context.Context, c Caller, req RunRequest) (Accepted, error)
	// Get returns c's record id, with its result: ProblemNotFound,
	// ProblemConcurrencyLimited (c has its reads in flight).
	Get(ctx context.Context, c Caller, id string) (*StoredRecord, error)
	// List returns a page of c's records, newest first, without results:
	// ProblemInvalidRequest (a bad cursor), ProblemConcurrencyLimited.
	List(ctx context.Context, c Caller, q ListQuery) (RecordList, error)
	// Cancel cancels c's queued execution id at once, or asks a running one
	// to stop (running is then true): ProblemNotFound, ProblemNotCancellable
	// (it has ended, or it is synchronous).
	Cancel(ctx context.Context, c Caller, id string) (rec *StoredRecord, running bool, err error)
	// Follow hands send the events of c's execution id after event after,
	// then each new one as it is recorded, until the execution has ended
	// and every event is sent; idle, if not nil, is called once the stream
	// is admitted, before any event (a front door may answer now: a
	// refusal can no longer come), then at every poll while nothing comes
	// (a stream may send a heartbeat). ProblemNotFound,
	// ProblemConcurrencyLimited (c has its streams open); after events,
	// send's or idle's error.
	Follow(ctx context.Context, c Caller, id string, after int64, send func(EventRecord) error, idle func() error) error
	// Capabilities lists the capabilities c may use.
	Capabilities(c Caller) CapabilityList
	// Bounds are what a request may ask for and what a result may hold
	// here, for front doors that describe them (the MCP tool's schema).
	Bounds() Bounds
	// Recording reports whether executions are recorded: without a store
	// there are no records, no queue, and Submit, Get, List, Cancel and
	// Follow answer ProblemNotFound.
	Recording() bool
	// Ready reports whether the service can take executions now: a
	// *Problem (ProblemRuntimeUnavailable, ProblemStorageUnavailable) if not.
	Ready(ctx context.Context) error
	// Scripts are the caller's stored scripts, which Run and Submit run
	// by name (a request's script member).
	Scripts
}

// Bounds are a service's limits on requests and results.
type Bounds struct {
	DefaultTimeoutMs  int    // timeoutMs when absent
	MaxTimeoutMs      int    // largest timeoutMs
	MaxCodeBytes      int    // largest code, or all modules together
	MaxModules        int    // most modules
	MaxEnvBytes       int    // largest env and secrets, as JSON
	MaxLogBytes       int    // console output kept; past it lines are dropped
	MaxLogLineBytes   int    // a longer console message is cut
	MaxResponseBytes  int64  // a longer Response body is cut
	CompatibilityDate string // compatibilityDate when absent
}

// Caller is who asks: the API key's name (never the key) and the quotas
// of its own; zero means the service's default.
type Caller struct {
	Name           string
	Requests       int   // executions started per quota window
	Concurrency    int   // executions running at once
	MaxQueued      int   // executions queued at once
	MaxStoredBytes int64 // bytes its records take in the store
}

// RunRequest is an execution request as a front door received it.
type RunRequest struct {
	// ID is the execution's id: the front door's id for the request, which
	// it has told its client (HTTP's X-Execution-Id).
	ID string
	// Body is the request's members: a POST /execute body (POST
	// /executions' with its callbackUrl), validated by the service, which
	// names the member of every problem.
	Body map[string]json.RawMessage
	// Buffered says the caller wants the result at once, not a stream: the
	// runtime may hand every event over when the execution ends.
	Buffered bool
}

// ListQuery selects a page of a caller's records.
// Its members are as the caller gave them: the service checks them.
type ListQuery struct {
	Status string // a status; empty: any
	Limit  string // 1–100; empty: 20
	Cursor string // a page's Next; empty: the newest
}

// StoredRecord is a record as the store keeps it: Record, and its result
// as stored, which is spliced into its JSON undecoded (a result may be
// megabytes). Record.Result, if set, is used instead.
type StoredRecord struct {
	Record
	ResultJSON json.RawMessage
}

// MarshalJSON renders the record with its result.
func (r StoredRecord) MarshalJSON() ([]byte, error) {
	head, err := json.Marshal(r.Record)
	if err != nil || r.Record.Result != nil || len(r.ResultJSON) == 0 || r.Record.Status != StatusFinished {
		return head, err
	}
	out := make([]byte, 0, len(head)+len(r.ResultJSON)+12)
	out = append(out, head[:len(head)-1]...) // without its closing brace
	out = append(out, `,"result":`...)
	out = append(out, r.ResultJSON...)
	return append(out, '}'), nil
}

// EventRecord is one recorded event of an execution: its id (1, 2, … per
// execution), its type and its JSON (an Event's).
type EventRecord struct {
	ID   int64
	Type string
	Data json.RawMessage
}
