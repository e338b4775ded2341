package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/dynamic-workers/gateway/internal/egress"
)

// What a failed attempt's error says, in the record the tenant reads. It
// names what failed as the tenant sees it, never the gateway's resolver,
// the address a name resolved to, or Go's error text; the full error goes
// to the gateway's log (Attempt.Cause).
const (
	textNameRefused   = "refused: the host resolves to an address callbacks may not reach"
	textLocalName     = "refused: a local or internal host name"
	textBadAddress    = "refused: not a valid address"
	textUnresolved    = "could not resolve host"
	textConnRefused   = "connection refused"
	textUnreachable   = "host unreachable"
	textClosed        = "connection closed before an answer"
	textTLS           = "TLS handshake failed"
	textHeadTooLarge  = "answered with headers larger than 64 KiB"
	textBadAnswer     = "answered with a malformed HTTP response"
	textConnectFailed = "connection failed"
)

// tenantError is a delivery error with what the tenant may read of it.
type tenantError struct {
	text string
	err  error
}

func (e *tenantError) Error() string { return e.err.Error() }
func (e *tenantError) Unwrap() error { return e.err }

// hostRefused is the error for a URL's host that the reach refuses as
// written: the tenant wrote the address, so its kind is named.
func hostRefused(err error) error {
	var r *refusal
	switch {
	case errors.As(err, &r):
		return &tenantError{text: "refused: " + r.class.kind + " address", err: err}
	case errors.Is(err, egress.ErrBlockedName):
		return &tenantError{text: textLocalName, err: fmt.Errorf("%w: %w", ErrRefusedAddress, err)}
	}
	return &tenantError{text: textBadAddress, err: fmt.Errorf("%w: %w", ErrRefusedAddress, err)}
}

// tenantText says what err, a failed request's error, means for the
// tenant.
func tenantText(err error) string {
	var te *tenantError
	var timeout interface{ Timeout() bool }
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.As(err, &te):
		return te.text
	case errors.Is(err, ErrRefusedAddress):
		return "refused"
	case errors.Is(err, syscall.ECONNREFUSED):
		return textConnRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return textUnreachable
	case errors.As(err, &timeout) && timeout.Timeout():
		return "timed out"
	case errors.As(err, &unknownCA):
		return textTLS + ": certificate not trusted"
	case errors.As(err, &hostErr):
		return textTLS + ": certificate not valid for the host"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return textTLS + ": certificate expired or not yet valid"
	case errors.As(err, &certErr), errors.As(err, &invalid):
		return textTLS + ": certificate not accepted"
	case errors.As(err, &record):
		return textTLS + ": the receiver does not speak TLS"
	case errors.As(err, &alert):
		return textTLS + ": the receiver refused it"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return textClosed
	}
	var opErr *net.OpError
	msg := err.Error()
	switch {
	case strings.Contains(msg, "response headers exceeded"):
		return textHeadTooLarge
	case strings.Contains(msg, "malformed HTTP"), strings.Contains(msg, "1xx"):
		return textBadAnswer
	case strings.Contains(msg, "gave HTTP response to HTTPS client"):
		return textTLS + ": the receiver does not speak TLS"
	case strings.Contains(msg, "tls:"):
		return textTLS
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return textConnectFailed
	}
	return "request failed"
}
