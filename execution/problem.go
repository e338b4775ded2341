package execution

import (
	"fmt"
	"net/http"
	"strconv"
)

// Problem codes: the stable, machine-readable `code` of the RFC 9457
// application/problem+json answer with which the gateway refuses a request
// (openapi.yaml's Problem). They are untyped strings, not Codes: a Code says
// why an execution that ran did not succeed, a problem code why none ran.
// The server, the MCP server and the client package all use these; each
// code has one HTTP status (ProblemStatus).
const (
	ProblemMalformedJSON        = "malformed_json"         // 400: the body is not JSON
	ProblemUnsupportedMediaType = "unsupported_media_type" // 415: the body is not application/json
	ProblemBodyTooLarge         = "body_too_large"         // 413: the body is over the gateway's limit
	ProblemInvalidRequest       = "invalid_request"        // 422: see the problem's errors
	ProblemNotFound             = "not_found"              // 404
	ProblemMethodNotAllowed     = "method_not_allowed"     // 405
	ProblemNotAcceptable        = "not_acceptable"         // 406
	ProblemUnauthorized         = "unauthorized"           // 401: no valid API key
	ProblemForbiddenHost        = "forbidden_host"         // 403: a non-loopback Host at a keyless gateway
	ProblemInsufficientScope    = "insufficient_scope"     // 403: the key's scope does not allow the route (a metrics key)
	ProblemUnknownParameter     = "unknown_parameter"      // 400: a query parameter the route does not take
	ProblemRateLimited          = "rate_limited"           // 429: over the key's request quota
	ProblemConcurrencyLimited   = "concurrency_limited"    // 429: over the key's concurrency quota
	ProblemRuntimeUnavailable   = "runtime_unavailable"    // 503: no runtime can take it now; retry
	ProblemQueueFull            = "queue_full"             // 503: the async queue is full; retry
	ProblemQueueLimited         = "queue_limited"          // 429: the key has its bound of executions queued
	ProblemNotCancellable       = "not_cancellable"        // 409: it has ended, or runs synchronously
	ProblemStorageUnavailable   = "storage_unavailable"    // 503: the store of records refuses writes; nothing ran; retry
	ProblemRecordNotStored      = "record_not_stored"      // 500: it ran, but its record could not be stored: not reported
	ProblemInternal             = "internal"               // 500
	ProblemScriptsFull          = "scripts_full"           // 507: the key's stored scripts take their bound
	// Dependencies: each names the package at fault in its detail.
	ProblemDependencyNotFound    = "dependency_not_found"   // 422: no such package or version on the registry
	ProblemDependencyDenied      = "dependency_denied"      // 422: the gateway's packages.allow/deny refuse it, or its tarball is unsafe
	ProblemDependencyTooLarge    = "dependency_too_large"   // 422: over packages.max_packages or max_bytes
	ProblemDependencyUnavailable = "dependency_unavailable" // 503: the registry failed or was too slow; retry
)

// problemStatus is the HTTP status of each problem code.
var problemStatus = map[string]int{
	ProblemMalformedJSON:         http.StatusBadRequest,
	ProblemUnsupportedMediaType:  http.StatusUnsupportedMediaType,
	ProblemBodyTooLarge:          http.StatusRequestEntityTooLarge,
	ProblemInvalidRequest:        http.StatusUnprocessableEntity,
	ProblemNotFound:              http.StatusNotFound,
	ProblemMethodNotAllowed:      http.StatusMethodNotAllowed,
	ProblemNotAcceptable:         http.StatusNotAcceptable,
	ProblemUnauthorized:          http.StatusUnauthorized,
	ProblemForbiddenHost:         http.StatusForbidden,
	ProblemInsufficientScope:     http.StatusForbidden,
	ProblemUnknownParameter:      http.StatusBadRequest,
	ProblemRateLimited:           http.StatusTooManyRequests,
	ProblemConcurrencyLimited:    http.StatusTooManyRequests,
	ProblemRuntimeUnavailable:    http.StatusServiceUnavailable,
	ProblemQueueFull:             http.StatusServiceUnavailable,
	ProblemQueueLimited:          http.StatusTooManyRequests,
	ProblemNotCancellable:        http.StatusConflict,
	ProblemStorageUnavailable:    http.StatusServiceUnavailable,
	ProblemRecordNotStored:       http.StatusInternalServerError,
	ProblemInternal:              http.StatusInternalServerError,
	ProblemDependencyNotFound:    http.StatusUnprocessableEntity,
	ProblemDependencyDenied:      http.StatusUnprocessableEntity,
	ProblemDependencyTooLarge:    http.StatusUnprocessableEntity,
	ProblemDependencyUnavailable: http.StatusServiceUnavailable,
	ProblemScriptsFull:           http.StatusInsufficientStorage,
}

// ProblemCodes lists every problem code.
func ProblemCodes() []string {
	codes := make([]string, 0, len(problemStatus))
	for code := range problemStatus {
		codes = append(codes, code)
	}
	return codes
}

// ProblemStatus is the HTTP status of a problem code (500 for one that is
// not a problem code).
func ProblemStatus(code string) int {
	if s, ok := problemStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Problem is a refused request: an RFC 9457 problem detail, the one error
// type with which the gateway (over HTTP, over MCP) says why nothing ran,
// and which the client decodes.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Code     string         `json:"code"`
	Instance string         `json:"instance,omitempty"` // the request's execution id
	Errors   []FieldProblem `json:"errors,omitempty"`
	// RetryAfter is how long to wait before trying again, in seconds
	// (sent as Retry-After when positive).
	RetryAfter int `json:"-"`
	// Quota, with ProblemRateLimited, is the key's executions per window
	// (sent as X-RateLimit-Limit).
	Quota int `json:"-"`
}

// FieldProblem is one problem found while validating a request.
type FieldProblem struct {
	Field  string `json:"field"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// Codes of a FieldProblem.
const (
	FieldRequired          = "required"
	FieldConflict          = "conflict"
	FieldWrongType         = "wrong_type"
	FieldInvalid           = "invalid"
	FieldOutOfRange        = "out_of_range"
	FieldUnknown           = "unknown_field"
	FieldTooLarge          = "too_large"
	FieldRejectedByRuntime = "rejected_by_runtime"
)

func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// ProblemTypeBase prefixes every problem's type URI; the fragment is its
// code, documented in openapi.yaml.
const ProblemTypeBase = "https://dynamic-workers.dev/problems#"

// NewProblem is the problem code, with detail, at its status.
func NewProblem(code, detail string, args ...any) *Problem {
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	status := ProblemStatus(code)
	return &Problem{Type: ProblemTypeBase + code, Title: http.StatusText(status), Status: status, Detail: detail, Code: code}
}

// InvalidRequest is the problem of a request with the field problems given:
// its detail is the first one's, and how many more there are.
func InvalidRequest(problems []FieldProblem) *Problem {
	detail := problems[0].Detail
	if len(problems) > 1 {
		detail += " (and " + strconv.Itoa(len(problems)-1) + " more problems)"
	}
	p := NewProblem(ProblemInvalidRequest, detail)
	p.Errors = problems
	return p
}

// WithRetryAfter sets p's Retry-After, in seconds, and returns p.
func (p *Problem) WithRetryAfter(seconds int) *Problem {
	p.RetryAfter = seconds
	return p
}
