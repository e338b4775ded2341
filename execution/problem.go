package execution

// Problem codes: the stable, machine-readable `code` of the RFC 9457
// application/problem+json answer with which the gateway refuses a request
// (openapi.yaml's Problem). They are untyped strings, not Codes: a Code says
// why an execution that ran did not succeed, a problem code why none ran.
// The server (internal/api) and the client package both use these.
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
	ProblemRateLimited          = "rate_limited"           // 429: over the key's request quota
	ProblemConcurrencyLimited   = "concurrency_limited"    // 429: over the key's concurrency quota
	ProblemRuntimeUnavailable   = "runtime_unavailable"    // 503: no runtime can take it now; retry
	ProblemQueueFull            = "queue_full"             // 503: the async queue is full; retry
	ProblemQueueLimited         = "queue_limited"          // 429: the key has its bound of executions queued
	ProblemNotCancellable       = "not_cancellable"        // 409: it has ended, or runs synchronously
	ProblemStorageUnavailable   = "storage_unavailable"    // 503: the store of records refuses writes; nothing ran; retry
	ProblemRecordNotStored      = "record_not_stored"      // 500: it ran, but its record could not be stored: not reported
	ProblemInternal             = "internal"               // 500
)
