// Package store keeps the gateway's execution records: one per execution,
// synchronous or queued, with its events, its result and, while it waits or
// runs, the request it runs. It owns the queue of asynchronous executions
// (claimed by the gateway's workers) and the leases that tell a gateway's
// running executions from ones a dead gateway left behind.
//
// Two implementations share one schema, one set of queries and one
// conformance suite (storetest): SQLite in a file (the default, one gateway)
// and PostgreSQL (any number of gateways on one database). Migrations are
// embedded and applied by goose when a store opens.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dynamic-workers/gateway/execution"
)

// Status is where an execution is in its life.
type Status string

// Statuses of an execution, as the API names them (execution.Status*).
// Finished and Cancelled are final.
const (
	Queued    Status = execution.StatusQueued
	Running   Status = execution.StatusRunning
	Finished  Status = execution.StatusFinished
	Cancelled Status = execution.StatusCancelled
)

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	switch s {
	case Queued, Running, Finished, Cancelled:
		return true
	}
	return false
}

// Final reports whether nothing more happens to an execution in status s.
func (s Status) Final() bool { return s == Finished || s == Cancelled }

// Execution is one execution's record.
type Execution struct {
	ID     string
	Caller string // the API key's name; a key sees only its own records
	Status Status
	// Async marks a submission to POST /executions; a synchronous execution
	// lives in its HTTP request and is never run again.
	Async bool
	// Outbound says the request allowed network access or capabilities:
	// the execution may have had side effects, so it runs again after its
	// gateway died only if Retry is execution.RetryAlways.
	Outbound bool
	// Retry is the request's retry policy (execution.RetryAuto, RetryAlways,
	// RetryNever).
	Retry string
	// Request is the submitted body (with its secrets) while the execution
	// is queued or running; it is deleted when the execution ends.
	Request     []byte
	CallbackURL string
	// Result is the result of a record the gateway holds in memory (the
	// Finished hook's); ResultJSON is the result as stored, which a record
	// read from the store carries instead, undecoded: a result may be
	// megabytes, and what reads it mostly sends it on as it is.
	Result     *execution.Result
	ResultJSON json.RawMessage
	Owner      string // the gateway running it
	// Attempts is how many times a gateway claimed it, less the runs
	// handed back by a gateway that stopped (Finish with Queued).
	Attempts int
	// CancelRequested asks the owner to stop a running execution.
	CancelRequested bool
	CreatedAt       time.Time
	StartedAt       time.Time // zero until it runs
	FinishedAt      time.Time // zero until it ends
	// LastEvent is the id of its last event when claimed (a re-run goes on
	// after it).
	LastEvent int64
	// Callback is the delivery of the record to CallbackURL.
	Callback Callback
	// Trace is the W3C traceparent of the span the execution's trace
	// continues from; "" when it is not traced.
	Trace string
}

// DecodedResult returns e's result: Result, or ResultJSON decoded; nil if
// it has none.
func (e *Execution) DecodedResult() (*execution.Result, error) {
	if e.Result != nil || len(e.ResultJSON) == 0 {
		return e.Result, nil
	}
	var r execution.Result
	if err := json.Unmarshal(e.ResultJSON, &r); err != nil {
		return nil, fmt.Errorf("execution %s: result: %w", e.ID, err)
	}
	return &r, nil
}

// CallbackState is where the delivery of a record to its callback URL is.
type CallbackState string

// States of a callback. An execution with a callback URL turns
// CallbackPending in the transaction that ends it (finished or cancelled),
// so a delivery is never lost between the end and the send.
const (
	CallbackNone      CallbackState = "" // no callback URL, or not ended yet
	CallbackPending   CallbackState = execution.CallbackPending
	CallbackDelivered CallbackState = execution.CallbackDelivered
	CallbackFailed    CallbackState = execution.CallbackFailed
)

// Callback is the delivery of a record: its state, the attempts made so far
// and, if it failed, why. Owner is the gateway that claimed it.
type Callback struct {
	State    CallbackState
	Attempts []execution.CallbackAttempt
	Reason   string
	Owner    string
	// Sent counts the attempts started, each stored before it is sent (at
	// least len(Attempts)): an attempt cut by a crash counts, so the next
	// gateway's first attempt is numbered after it.
	Sent int
}

// Event is one stored event of an execution: its id (1, 2, … per
// execution), type and JSON (an execution.Event).
type Event struct {
	Seq  int64
	Type string
	Data json.RawMessage
}

// Write is one change for Apply: a new record (Create) with its first
// Events, or events of record ID, stored with its end if Finish is set.
// Create and Finish together make a record that has ended already, with
// its Events: one insert, for an execution written only once it has ended.
type Write struct {
	Create *Execution
	ID     string
	Events []Event
	Finish *Ending
}

// Ending is how a running execution ended (see Store.Finish): Status
// Queued hands it back to the queue.
type Ending struct {
	Owner  string
	Status Status
	Result *execution.Result
	// ResultJSON, if set, is Result as JSON, which the caller had encoded
	// already: it is stored as it is (a result with a guest's megabyte of
	// logs costs milliseconds to encode).
	ResultJSON json.RawMessage
	At         time.Time
}

// Query selects a caller's records for List.
type Query struct {
	Status Status // empty: any
	Limit  int    // at most this many (default 20, at most 100)
	Cursor string // from the previous page's Next; empty: the newest
}

// Page is one page of List: newest first.
type Page struct {
	Executions []*Execution
	Next       string // cursor of the next page; empty when this is the last
}

// Recovered is what Recover did with executions whose gateway died.
type Recovered struct {
	Requeued []string     // ids queued again (async, no network allowed)
	Crashed  []*Execution // finished as runtime_crashed
}

// Store keeps execution records. Every method is safe for concurrent use,
// also from several gateways on one database (PostgreSQL).
type Store interface {
	// Create adds a record: queued (async) or running, owned by e.Owner.
	Create(ctx context.Context, e *Execution) error
	// Get returns caller's record id with its result (ResultJSON), without
	// its request, or ErrNotFound (also when it is another caller's).
	Get(ctx context.Context, caller, id string) (*Execution, error)
	// Head returns caller's record id without its request and result, or
	// ErrNotFound.
	Head(ctx context.Context, caller, id string) (*Execution, error)
	// List returns caller's records, newest first, without their requests
	// and results. ErrBadCursor if the cursor is not one List returned for
	// caller (cursors are sealed: they tell nothing of other callers).
	List(ctx context.Context, caller string, q Query) (Page, error)
	// Usage is how many bytes caller's records take in the store: their
	// results and events.
	Usage(ctx context.Context, caller string) (int64, error)
	// Evict deletes caller's oldest ended records (with their events; not
	// one whose callback is still pending, nor its newest record) until its
	// usage is at most keep, and returns how many it deleted.
	Evict(ctx context.Context, caller string, keep int64) (int, error)
	// CountQueued counts the queued executions of every caller.
	CountQueued(ctx context.Context) (int, error)
	// Enqueue adds the queued execution e unless the queue holds b.Total
	// executions (ErrQueueFull) or e.Caller's b.PerCaller
	// (ErrCallerQueueFull). A caller's count is exact, also across
	// gateways; the total may be passed by submissions of other callers
	// made at the same moment.
	Enqueue(ctx context.Context, e *Execution, b Bounds) error
	// Claim takes the oldest queued execution for owner (status running,
	// Attempts+1) among the callers with fewer than their lim executions
	// running, or returns ErrEmpty. Two owners never claim the same one, and
	// claims are serialized, so lim holds across gateways.
	Claim(ctx context.Context, owner string, now time.Time, lim Limits) (*Execution, error)
	// AppendEvents stores events of execution id.
	AppendEvents(ctx context.Context, id string, events []Event) error
	// Events returns up to limit events of id after event id after.
	Events(ctx context.Context, id string, after int64, limit int) ([]Event, error)
	// Finish ends a running execution of owner with status (Finished or
	// Cancelled) and result, stores its last events (its result event) in
	// the same transaction, and deletes its request. With status Queued it
	// hands a queued execution back instead: queued again, its request
	// kept, last (its restart event) stored, the run not counted against
	// MaxRuns (a gateway that stops hands on what it may not finish).
	// ErrNotOwner if it is not running under owner any more (another
	// gateway recovered it).
	Finish(ctx context.Context, id, owner string, status Status, res *execution.Result, last []Event, now time.Time) error
	// Cancel cancels caller's execution id: a queued one at once (its
	// record comes back Cancelled), a running one by asking its owner
	// (CancelRequested). ErrNotFound, or ErrFinal if it had ended.
	Cancel(ctx context.Context, caller, id string, now time.Time) (*Execution, error)
	// CancelRequests lists owner's running executions asked to stop.
	CancelRequests(ctx context.Context, owner string) ([]string, error)
	// Lease holds or renews owner's lease until expires: the gateway is
	// alive and its running executions are its own. With renew, ErrNoLease
	// when the lease had been lost (expired and recovered by another).
	Lease(ctx context.Context, owner string, expires time.Time, renew bool) error
	// Release gives up owner's lease and frees its slots: its running
	// executions are recovered by the next Recover.
	Release(ctx context.Context, owner string) error
	// Recover frees the slots of owners whose lease expired before now,
	// and deals with their running executions: an async one that may run again (no network or
	// capabilities allowed, or its Retry says always; not RetryNever) is
	// queued again (a restart event tells its stream); any other is
	// finished with a runtime_crashed result.
	Recover(ctx context.Context, now time.Time) (Recovered, error)
	// Apply makes writes in order in one transaction (one commit for many
	// small writes). errs[i] is the outcome of writes[i]: ErrExists for a
	// Create of an id that exists, ErrNotOwner for a refused Finish (whose
	// events are then not stored). err is a failure of the whole: nothing
	// was written.
	Apply(ctx context.Context, writes []Write) (errs []error, err error)
	// ClaimCallback takes, for owner, the oldest pending callback that no
	// live gateway holds (its claimant's lease is gone or expired before
	// now), or returns ErrEmpty. Two live owners never hold the same one.
	// Callbacks of the callers in skip are left alone (the owner already
	// sends as many of theirs as one caller may).
	ClaimCallback(ctx context.Context, owner string, now time.Time, skip ...string) (*Execution, error)
	// SaveCallback stores the attempts of owner's claimed callback id and
	// its state: still CallbackPending (the claim is kept, or released when
	// release is set), or CallbackDelivered or CallbackFailed (final).
	// ErrNotOwner if owner does not hold it any more.
	SaveCallback(ctx context.Context, id, owner string, c Callback, release bool) error
	// Purge deletes records (and their events) that ended before t, but
	// not one whose callback is still pending: it goes once delivered or
	// given up.
	Purge(ctx context.Context, before time.Time) (int, error)
	// CountStart counts one execution caller starts at now against its
	// limit per window, for every gateway on the store together: a sliding
	// window, the executions started in the current window plus those of
	// the window before weighted by the share of it that the last window's
	// length still covers. ErrLimited, with nothing counted, when one more
	// would pass limit.
	CountStart(ctx context.Context, caller string, now time.Time, window time.Duration, limit int) error
	// HoldSlot takes a slot of caller's for its synchronous execution id,
	// run by owner, unless caller has limit executions running on every
	// gateway of the store together (the slots it holds and its queued
	// executions running): ErrLimited. Claim counts the slots too.
	HoldSlot(ctx context.Context, caller, id, owner string, limit int) error
	// FreeSlot frees execution id's slot.
	FreeSlot(ctx context.Context, id string) error
	// PurgeRates forgets the rate windows that started before before.
	PurgeRates(ctx context.Context, before time.Time) error
	// Shared reports whether several gateways may use the store at once
	// (PostgreSQL): the keys' quotas are then counted in it.
	Shared() bool
	// PutScript stores a version of caller's script name, which becomes
	// its latest: created is false when the version was stored before
	// (identical to the latest: nothing changes; an older one: it is the
	// latest again). A new version that would take the caller's scripts
	// past maxBytes (their meta and bodies; 0: no bound) is ErrScriptsFull.
	PutScript(ctx context.Context, s *Script, maxBytes int64) (created bool, err error)
	// GetScript returns caller's script name at version ("": its latest),
	// with its body, or ErrNotFound.
	GetScript(ctx context.Context, caller, name, version string) (*Script, error)
	// ListScripts returns the latest version of each of caller's scripts,
	// by name, without bodies.
	ListScripts(ctx context.Context, caller string) ([]*Script, error)
	// ScriptVersions returns the versions of caller's script name, newest
	// first, without bodies, or ErrNotFound.
	ScriptVersions(ctx context.Context, caller, name string) ([]*Script, error)
	// DeleteScript deletes every version of caller's script name, or
	// returns ErrNotFound.
	DeleteScript(ctx context.Context, caller, name string) error
	// Probe writes a little data and deletes it: whether the store takes
	// writes now.
	Probe(ctx context.Context) error
	// Close closes the store.
	Close() error
}

// Script is one version of a stored script: its caller (the API key's
// name), name, version (a hash of its content), when it was stored, what
// listings show (Meta, JSON) and its code with its dependencies bundled
// (Body, JSON; only GetScript reads it).
type Script struct {
	Caller, Name, Version string
	CreatedAt             time.Time
	Meta                  []byte
	Body                  []byte
}

// Errors of the store.
var (
	ErrNotFound = errors.New("no such execution")
	// ErrScriptsFull refuses a script version its caller has no room for.
	ErrScriptsFull = errors.New("the caller's scripts take their bound")
	ErrEmpty       = errors.New("no execution is queued")
	ErrNotOwner    = errors.New("the execution is not running under this owner")
	ErrFinal       = errors.New("the execution has ended")
	ErrNoLease     = errors.New("the lease was lost")
	ErrBadCursor   = errors.New("invalid cursor")
	ErrExists      = errors.New("an execution with this id exists")
	ErrInUse       = errors.New("the SQLite file is in use by another gateway; give each gateway its own storage.path, or share storage.url (PostgreSQL)")
)

// Open opens the store at location: a postgres:// or postgresql:// URL, or
// else the path of an SQLite file (created with its directory if missing).
func Open(ctx context.Context, location string) (Store, error) {
	return OpenWith(ctx, location, Options{})
}

// Options tune a store as it opens.
type Options struct {
	// MaxFileBytes bounds an SQLite file: past it writes are refused as on
	// a full disk. 0: no bound. PostgreSQL ignores it.
	MaxFileBytes int64
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, location string, opts Options) (Store, error) {
	if strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://") {
		return OpenPostgres(ctx, location)
	}
	return openSQLite(ctx, location, opts)
}

// CrashedResult is the result of an execution whose gateway died while it
// ran and that could not safely run again.
func CrashedResult(id string) *execution.Result {
	return &execution.Result{
		ID:       id,
		Logs:     []execution.Log{},
		Outbound: []execution.Outgoing{},
		Error: &execution.Error{
			Code:    execution.CodeRuntimeCrashed,
			Message: "the gateway stopped while the execution ran; it may have had side effects (it was allowed the network or capabilities), so it was not run again (a request with retry \"always\" is)",
		},
	}
}
