// Package webhook delivers an execution's record to the callback URL its
// caller named: signed (Sign, Verify), POSTed with retries for a bounded
// time (Deliverer), each attempt reported so it can be kept in the record,
// and only ever to the addresses Options.Reach allows (public ones unless
// the operator opens more), checked when the connection is made.
//
// It knows nothing of executions or storage: the caller hands it bytes to
// send and keeps what it reports.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the request header that carries the signature:
// "t=<unix seconds>,v1=<hex hmac-sha256(secret, t + "." + body)>".
const Header = "Gateway-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrMalformed = errors.New("malformed signature header")
	ErrTimestamp = errors.New("signature timestamp outside the tolerance")
	ErrSignature = errors.New("no signature matches")
	ErrNoSecret  = errors.New("no secret")
)

// maxHeader bounds the header Verify parses; a real one is well under it.
const maxHeader = 4096

// Sign returns the Gateway-Signature value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	return SignAll([][]byte{secret}, t, body)
}

// SignAll signs body with each secret, one v1= value per secret, so that
// during a rotation receivers holding either the old or the new secret
// accept it.
func SignAll(secrets [][]byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		b.WriteString(",v1=" + hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a Gateway-Signature header against body, as a receiver
// does: the header must hold exactly one t= and at least one v1= (each 64
// hex digits; other keys are ignored for schemes to come), t must be within
// tolerance of now (DefaultTolerance if tolerance <= 0), which stops a
// captured request from being replayed later, and one v1= must equal the
// HMAC of t + "." + body under secret, compared in constant time.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	ts, sigs, err := parseHeader(header)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	unix, _ := strconv.ParseInt(ts, 10, 64) // parseHeader checked it
	if d := now.Sub(time.Unix(unix, 0)).Abs(); d > tolerance {
		return fmt.Errorf("%w: %s away, tolerance %s", ErrTimestamp, d.Truncate(time.Second), tolerance)
	}
	want := mac(secret, ts, body)
	ok := 0
	for _, sig := range sigs {
		ok |= boolInt(hmac.Equal(sig, want))
	}
	if ok == 0 {
		return ErrSignature
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parseHeader splits a header into its timestamp (decimal digits) and its
// decoded v1 signatures.
func parseHeader(header string) (ts string, sigs [][]byte, err error) {
	if len(header) > maxHeader {
		return "", nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxHeader)
	}
	seenT := false
	for _, part := range strings.Split(header, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			return "", nil, fmt.Errorf("%w: %q is not key=value", ErrMalformed, part)
		}
		switch k {
		case "t":
			if seenT || !validTimestamp(v) {
				return "", nil, fmt.Errorf("%w: want exactly one t=<unix seconds>", ErrMalformed)
			}
			ts, seenT = v, true
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return "", nil, fmt.Errorf("%w: v1 must be %d hex digits", ErrMalformed, 2*sha256.Size)
			}
			sigs = append(sigs, sig)
		}
	}
	if !seenT || len(sigs) == 0 {
		return "", nil, fmt.Errorf("%w: want t= and at least one v1=", ErrMalformed)
	}
	return ts, sigs, nil
}

// validTimestamp accepts 1 to 12 decimal digits: no sign, no spaces, no
// exponent, nothing ParseInt would take that a sender never writes.
func validTimestamp(v string) bool {
	if v == "" || len(v) > 12 {
		return false
	}
	return strings.Trim(v, "0123456789") == ""
}
