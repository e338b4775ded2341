package executions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/egress"
)

// Field problem codes.
const (
	fieldRequired   = execution.FieldRequired
	fieldConflict   = execution.FieldConflict
	fieldWrongType  = execution.FieldWrongType
	fieldInvalid    = execution.FieldInvalid
	fieldOutOfRange = execution.FieldOutOfRange
	fieldUnknown    = execution.FieldUnknown
	fieldTooLarge   = execution.FieldTooLarge
)

// FieldProblem is one problem of a request's member.
type FieldProblem = execution.FieldProblem

// Limits are the server's bounds on executions.
type Limits struct {
	CompatibilityDate string        // default compatibility date
	DefaultTimeout    time.Duration // timeout when timeoutMs is absent
	MaxTimeout        time.Duration // largest timeoutMs accepted
	MaxResponseBytes  int64         // guest response bodies are cut here
	MaxLogLineBytes   int           // longer console messages are cut here
	MaxLogBytes       int           // console output kept per execution
	MaxCodeBytes      int           // largest total size of code or modules
	MaxModules        int           // most modules per execution
	MaxEnvBytes       int           // largest size of env and secrets as JSON
	DenyAddresses     []string      // the gateway's own addresses, never reachable from guests
	CPUMs             int           // default limits.cpuMs (0: platform's)
	SubRequests       int           // default limits.subRequests (0: platform's)
}

var (
	tokenPattern      = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	flagPattern       = regexp.MustCompile(`^[a-z0-9_]+$`)
	datePattern       = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	moduleNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@+-]*(/[A-Za-z0-9_][A-Za-z0-9_.@+-]*)*$`)
)

// requestFields lists the members of an execute request, in the order their
// problems are reported (capabilities are checked against the caller's key
// by grantCapabilities).
var requestFields = execution.RequestFields()

// validator collects every problem found in one request.
type validator struct {
	problems []FieldProblem
}

func (v *validator) add(field, code, format string, args ...any) {
	v.problems = append(v.problems, FieldProblem{Field: field, Code: code, Detail: fmt.Sprintf(format, args...)})
}

// decode unmarshals raw into dst, reporting a wrong type as a problem.
func (v *validator) decode(field string, raw json.RawMessage, dst any, want string) bool {
	if raw == nil {
		return false
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		v.add(field, fieldWrongType, "%s must be %s, not null", field, want)
		return false
	}
	var err error
	switch d := dst.(type) {
	case *string:
		if s, ok := plainString(raw); ok {
			*d = s
			return true
		}
		err = json.Unmarshal(raw, d)
	case *map[string]any:
		// Numbers in env stay as they were written (json.Number), not
		// rounded through float64.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		err = dec.Decode(dst)
	default:
		err = json.Unmarshal(raw, dst)
	}
	if err != nil {
		v.add(field, fieldWrongType, "%s must be %s", field, want)
		return false
	}
	return true
}

// plainString is the JSON string raw (a valid JSON value) as Go text
// when it needs no decoding: quoted, with no escapes or control
// characters, valid UTF-8 (json.Unmarshal would replace invalid bytes).
func plainString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// validateExecute checks an execute request's members and turns them into a
// job for the backend. It reports every problem found, not just the first.
func validateExecute(members map[string]json.RawMessage, limits Limits, now time.Time) (*execution.Job, []FieldProblem) {
	v := &validator{}
	var unknown []string
	known := make(map[string]bool, len(requestFields))
	for _, f := range requestFields {
		known[f] = true
	}
	for name := range members {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		field := name
		if field == "" {
			field = `""`
		}
		v.add(field, fieldUnknown, "unknown field %q", name)
	}

	job := &execution.Job{
		CompatibilityDate:  limits.CompatibilityDate,
		CompatibilityFlags: []string{},
		Env:                map[string]any{},
		Timeout:            limits.DefaultTimeout,
		MaxResponseBytes:   limits.MaxResponseBytes,
		MaxLogLineBytes:    limits.MaxLogLineBytes,
		MaxLogBytes:        limits.MaxLogBytes,
		Request:            execution.GuestRequest{Method: http.MethodGet, URL: defaultGuestURL, Headers: map[string]string{}},
	}
	if limits.CPUMs > 0 || limits.SubRequests > 0 {
		job.Limits = &execution.Limits{CPUMs: limits.CPUMs, SubRequests: limits.SubRequests}
	}

	if _, ok := members["script"]; ok {
		v.script(members, job)
	} else {
		v.code(members, job)
		v.dependencies(members, job)
	}
	v.env(members, job)
	v.sizes(members, job, limits)
	v.outbound(members, job, limits.DenyAddresses)
	v.compatibility(members, job, now)
	v.timeout(members, job, limits)
	v.limits(members, job)
	v.guestRequest(members, job)
	v.isolate(members, job)
	v.retry(members, job)
	if len(v.problems) > 0 {
		return nil, v.problems
	}
	return job, nil
}

const defaultGuestURL = "http://localhost/"

// sizes checks the request caps: total code size, number of modules, and
// the size of env and secrets together (Cloudflare allows 1 MiB).
func (v *validator) sizes(members map[string]json.RawMessage, job *execution.Job, limits Limits) {
	if n := len(job.Modules) + len(job.Binary); limits.MaxModules > 0 && n > limits.MaxModules {
		v.add("modules", fieldTooLarge, "%d modules is more than the %d allowed", n, limits.MaxModules)
	}
	if limits.MaxCodeBytes > 0 {
		total := 0
		for _, src := range job.Modules {
			total += len(src)
		}
		for _, b := range job.Binary { // decoded: the bytes the isolate holds
			total += len(b.Bytes)
		}
		if total > limits.MaxCodeBytes {
			field := "modules"
			if _, ok := members["code"]; ok {
				field = "code"
			}
			v.add(field, fieldTooLarge, "%d bytes of code is more than the %d allowed", total, limits.MaxCodeBytes)
		}
	}
	if limits.MaxEnvBytes > 0 {
		if size := len(members["env"]) + len(members["secrets"]); size > limits.MaxEnvBytes {
			v.add("env", fieldTooLarge, "env and secrets take %d bytes, more than the %d allowed", size, limits.MaxEnvBytes)
		}
	}
}

// env checks env and secrets and merges them into the guest's env.
func (v *validator) env(members map[string]json.RawMessage, job *execution.Job) {
	var env map[string]any
	if v.decode("env", members["env"], &env, "an object") {
		for name, value := range env {
			if name == "" {
				v.add("env", fieldInvalid, "env names must not be empty")
				continue
			}
			if value == nil {
				v.add("env."+name, fieldWrongType, "env values must be strings, numbers, booleans or JSON objects, not null")
				continue
			}
			job.Env[name] = value
		}
	}
	var secrets map[string]string
	if v.decode("secrets", members["secrets"], &secrets, "an object of name to string") {
		for name, value := range secrets {
			if name == "" {
				v.add("secrets", fieldInvalid, "secret names must not be empty")
				continue
			}
			if _, clash := env[name]; clash {
				v.add("secrets."+name, fieldConflict, "%q is in both env and secrets", name)
				continue
			}
			job.Env[name] = value
			if value != "" {
				job.Secrets = append(job.Secrets, value)
			}
		}
	}
}

func (v *validator) outbound(members map[string]json.RawMessage, job *execution.Job, deny []string) {
	var out execution.Outbound
	if !v.decode("allowOutbound", members["allowOutbound"], &out, "a boolean or a list of host names") {
		return
	}
	switch {
	case out.All:
		job.Egress = &execution.EgressPolicy{Hosts: []string{"*"}, Deny: deny}
	case len(out.Hosts) > 0:
		ok := true
		for i, h := range out.Hosts {
			if err := egress.ValidPattern(h); err != nil {
				v.add(fmt.Sprintf("allowOutbound[%d]", i), fieldInvalid, "%v", err)
				ok = false
			}
		}
		if ok {
			job.Egress = &execution.EgressPolicy{Hosts: out.Hosts, Deny: deny}
		}
	}
}

func (v *validator) compatibility(members map[string]json.RawMessage, job *execution.Job, now time.Time) {
	var date string
	if v.decode("compatibilityDate", members["compatibilityDate"], &date, "a date (YYYY-MM-DD)") {
		t, err := time.Parse(time.DateOnly, date)
		switch {
		case err != nil || !datePattern.MatchString(date):
			v.add("compatibilityDate", fieldInvalid, "%q is not a date (YYYY-MM-DD)", date)
		case t.After(now.UTC()):
			v.add("compatibilityDate", fieldOutOfRange, "%s is in the future", date)
		default:
			job.CompatibilityDate = date
		}
	}
	var flags []string
	if v.decode("compatibilityFlags", members["compatibilityFlags"], &flags, "a list of strings") {
		for i, f := range flags {
			if !flagPattern.MatchString(f) {
				v.add(fmt.Sprintf("compatibilityFlags[%d]", i), fieldInvalid, "%q is not a compatibility flag name", f)
			}
		}
		job.CompatibilityFlags = flags
	}
}

// number decodes a JSON number; json.Number alone would also take "12".
func (v *validator) number(field string, raw json.RawMessage, dst *json.Number, want string) bool {
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '"' {
		v.add(field, fieldWrongType, "%s must be %s, not a string", field, want)
		return false
	}
	return v.decode(field, raw, dst, want)
}

func (v *validator) timeout(members map[string]json.RawMessage, job *execution.Job, limits Limits) {
	var ms json.Number
	if !v.number("timeoutMs", members["timeoutMs"], &ms, "an integer number of milliseconds") {
		return
	}
	n, err := ms.Int64()
	max := limits.MaxTimeout.Milliseconds()
	switch {
	case err != nil:
		v.add("timeoutMs", fieldWrongType, "timeoutMs must be an integer number of milliseconds, not %s", ms)
	case n < 1 || n > max:
		v.add("timeoutMs", fieldOutOfRange, "timeoutMs must be between 1 and %d, not %d", max, n)
	default:
		job.Timeout = time.Duration(n) * time.Millisecond
	}
}

func (v *validator) limits(members map[string]json.RawMessage, job *execution.Job) {
	var limits map[string]json.RawMessage
	if !v.decode("limits", members["limits"], &limits, "an object {cpuMs, subRequests} of integers") {
		return
	}
	values := map[string]int{}
	for name, raw := range limits {
		field := "limits." + name
		if name != "cpuMs" && name != "subRequests" {
			v.add(field, fieldUnknown, "unknown field %q", field)
			continue
		}
		var num json.Number
		if !v.number(field, raw, &num, "a non-negative integer") {
			continue
		}
		n, err := num.Int64()
		if err != nil || n < 0 || n > 1<<31-1 {
			v.add(field, fieldOutOfRange, "%s must be a non-negative integer, not %s", field, num)
			continue
		}
		values[name] = int(n)
	}
	if job.Limits == nil {
		job.Limits = &execution.Limits{}
	}
	if n, ok := values["cpuMs"]; ok {
		job.Limits.CPUMs = n
	}
	if n, ok := values["subRequests"]; ok {
		job.Limits.SubRequests = n
	}
	if *job.Limits == (execution.Limits{}) {
		job.Limits = nil
	}
}

// retry reads the retry policy: "auto" (the default), "always" or "never".
func (v *validator) retry(members map[string]json.RawMessage, job *execution.Job) {
	var retry string
	if !v.decode("retry", members["retry"], &retry, `"auto", "always" or "never"`) {
		return
	}
	switch retry {
	case execution.RetryAuto:
	case execution.RetryAlways, execution.RetryNever:
		job.Retry = retry
	default:
		v.add("retry", fieldInvalid, `retry must be "auto", "always" or "never", not %q`, retry)
	}
}

func (v *validator) isolate(members map[string]json.RawMessage, job *execution.Job) {
	var isolate string
	if !v.decode("isolate", members["isolate"], &isolate, `"fresh" or "reuse"`) {
		return
	}
	switch isolate {
	case "fresh":
	case "reuse":
		job.ReuseKey = "pending" // set from the final job by reuseKey
	default:
		v.add("isolate", fieldInvalid, `isolate must be "fresh" or "reuse", not %q`, isolate)
	}
}
