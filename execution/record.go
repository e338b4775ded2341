package execution

import "time"

// Statuses of an execution record.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusFinished  = "finished"
	StatusCancelled = "cancelled"
)

// Submission is the body of POST /executions: an execution to run later,
// and where to send its record when it ends.
type Submission struct {
	Request
	CallbackURL string `json:"callbackUrl,omitempty"`
}

// Accepted is the answer to POST /executions (202).
type Accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// Record is what the gateway keeps of an execution: GET /executions/{id}.
// Result is the /execute result (with logs) once it has finished.
type Record struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Async       bool       `json:"async"`
	CallbackURL string     `json:"callbackUrl,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	Result      *Result    `json:"result,omitempty"`
	// Callback is the delivery to CallbackURL; absent without one.
	Callback *Callback `json:"callback,omitempty"`
	// TraceID is the OpenTelemetry trace the execution's spans belong to
	// (the caller's, when its request carried a traceparent); absent when
	// the gateway does not trace.
	TraceID string `json:"traceId,omitempty"`
}

// States of a callback delivery.
const (
	CallbackWaiting   = "waiting"   // the execution has not ended
	CallbackPending   = "pending"   // it has ended; the delivery is under way or will be retried
	CallbackDelivered = "delivered" // the receiver answered 2xx
	CallbackFailed    = "failed"    // given up: see Reason
)

// Callback is the delivery of a record to its callbackUrl: every attempt
// made, in order. The secret that signs it is never part of it.
type Callback struct {
	URL       string            `json:"url"`
	State     string            `json:"state"`
	Delivered bool              `json:"delivered"`
	Reason    string            `json:"reason,omitempty"` // why it failed
	Attempts  []CallbackAttempt `json:"attempts"`
}

// CallbackAttempt is one POST of a callback: when it started, the
// receiver's status (absent without an HTTP answer), why it failed (absent
// on success) and how long it took.
type CallbackAttempt struct {
	At         time.Time `json:"at"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMs float64   `json:"durationMs"`
}

// RecordList is one page of GET /executions, newest first; Next is the
// cursor of the next page, empty on the last. Its records carry no result.
type RecordList struct {
	Executions []Record `json:"executions"`
	Next       string   `json:"next,omitempty"`
}
