package shim

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/worker"
)

// The shim's events carry what the guest produced, so the gateway checks
// each against the contract before anything reaches the client, the metrics
// or the log. The shim checks the same, but a check here holds even if the
// shim passes something through.

// malformedRecord is the result of an execution whose runtime sent an event
// that breaks the contract, as the shim words its own (contract.json). It
// quotes nothing the guest wrote.
var malformedRecord = worker.Contract.MalformedRecord

// errMalformed wraps every reason checkEvent refuses an event.
var errMalformed = errors.New("malformed event")

// streamOf maps each console level the shim may send to its stream: the
// map the shim reads (contract.json).
var streamOf = worker.Contract.LevelStreams

// checkEvent reports whether ev, decoded from the shim's stream, keeps the
// contract: a log with a known level on its stream, or a result whose error
// code (one of the shim's, contract.json), status, body encoding and
// outbound records are well formed. The
// error says why (for tests), never to the client.
func checkEvent(ev *execution.Event) error {
	switch ev.Type {
	case execution.EventLog:
		return checkLog(ev.Log)
	case execution.EventResult:
		return checkResult(ev.Result)
	case execution.EventOutbound:
		return checkOutgoing(ev.Call)
	}
	return fmt.Errorf("%w: event type %q", errMalformed, ev.Type)
}

// checkOutgoing checks an announced request: it comes from the shim's
// entrypoints, not the guest, but carries the guest's method and URL.
func checkOutgoing(o *execution.Outgoing) error {
	switch {
	case o == nil:
		return fmt.Errorf("%w: outbound without a body", errMalformed)
	case !isToken(o.Method), o.Status != 0, o.Denied, o.Run != 0:
		return fmt.Errorf("%w: outbound method %q status %d", errMalformed, o.Method, o.Status)
	case o.Capability != "" && !execution.ValidCapabilityName(o.Capability):
		return fmt.Errorf("%w: outbound capability %q", errMalformed, o.Capability)
	}
	return nil
}

func checkLog(l *execution.Log) error {
	if l == nil {
		return fmt.Errorf("%w: log without a body", errMalformed)
	}
	stream, ok := streamOf[l.Level]
	if !ok || l.Stream != stream {
		return fmt.Errorf("%w: log level %q on stream %q", errMalformed, l.Level, l.Stream)
	}
	return nil
}

func checkResult(res *execution.Result) error {
	switch {
	case res == nil:
		return fmt.Errorf("%w: result without a body", errMalformed)
	case res.Logs != nil:
		return fmt.Errorf("%w: result carries logs", errMalformed)
	case res.Success != (res.Error == nil):
		return fmt.Errorf("%w: success %v with error %v", errMalformed, res.Success, res.Error != nil)
	case !res.Success && (res.Response != nil || res.ReturnValue != nil),
		res.Response != nil && res.ReturnValue != nil:
		return fmt.Errorf("%w: success %v with response %v and return value %v", errMalformed, res.Success, res.Response != nil, res.ReturnValue != nil)
	case res.Mode != "":
		return fmt.Errorf("%w: a mode from the runtime", errMalformed)
	case res.Error != nil && !worker.Contract.ErrorCode(res.Error.Code):
		return fmt.Errorf("%w: error code %q", errMalformed, res.Error.Code)
	}
	if err := checkResponse(res.Response); err != nil {
		return err
	}
	for i, o := range res.Outbound {
		if !isToken(o.Method) || o.Status != 0 && (o.Status < 100 || o.Status > 599) {
			return fmt.Errorf("%w: outbound[%d] method %q status %d", errMalformed, i, o.Method, o.Status)
		}
		if o.Capability != "" && !execution.ValidCapabilityName(o.Capability) {
			return fmt.Errorf("%w: outbound[%d] capability %q", errMalformed, i, o.Capability)
		}
	}
	return nil
}

func checkResponse(r *execution.Response) error {
	if r == nil {
		return nil
	}
	if r.Status < 200 || r.Status > 599 {
		return fmt.Errorf("%w: response status %d", errMalformed, r.Status)
	}
	switch r.BodyEncoding {
	case execution.EncodingUTF8:
	case execution.EncodingBase64:
		if _, err := base64.StdEncoding.DecodeString(r.Body); err != nil {
			return fmt.Errorf("%w: base64 body: %v", errMalformed, err)
		}
	default:
		return fmt.Errorf("%w: body encoding %q", errMalformed, r.BodyEncoding)
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), as a
// request method must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c >= 0x80 || !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// rejectEvent is the result that ends an execution whose event failed to
// decode (err) or failed checkEvent. A line that is not JSON at all is the
// runtime's fault: the shim writes every line with JSON.stringify. Any other
// breach (an unknown type, a value of the wrong type, one out of range) is
// a record the guest shaped, so the guest's exception. Neither message
// quotes the event.
func rejectEvent(err error) execution.Event {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return execution.Failure(execution.CodeRuntimeCrashed, "malformed event from the runtime")
	}
	return execution.Failure(execution.CodeException, "%s", malformedRecord)
}
