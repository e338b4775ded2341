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
}

// RecordList is one page of GET /executions, newest first; Next is the
// cursor of the next page, empty on the last. Its records carry no result.
type RecordList struct {
	Executions []Record `json:"executions"`
	Next       string   `json:"next,omitempty"`
}
