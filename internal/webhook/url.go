package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MaxURLLength is the longest callback URL accepted.
const MaxURLLength = 2048

// ErrBadURL wraps every reason ValidateCallbackURL refuses a URL.
var ErrBadURL = errors.New("invalid callback URL")

// ValidateCallbackURL checks a callbackUrl when an execution is submitted,
// so that the API can answer 422 at once instead of failing later: an
// absolute http or https URL of at most MaxURLLength bytes, with a host, no
// user name or password and no fragment. A host spelled as an address in
// any notation (127.0.0.1, 2130706433, 0x7f.1, [::ffff:127.0.0.1],
// １２７.０.０.１, …) must be one reach allows; a local name (localhost,
// *.internal, a single label) is refused unless reach opens non-public
// addresses. Names are not resolved here: where a name leads is checked
// when each delivery connects.
func ValidateCallbackURL(raw string, reach Reach) error {
	_, err := parseCallbackURL(raw, reach)
	return err
}

func parseCallbackURL(raw string, reach Reach) (*url.URL, error) {
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadURL, MaxURLLength)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("%w: contains spaces or control characters", ErrBadURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadURL, urlErrorReason(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: scheme must be http or https", ErrBadURL)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%w: must be absolute, with a host", ErrBadURL)
	case u.User != nil:
		return nil, fmt.Errorf("%w: must not carry a user name or password", ErrBadURL)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%w: must not have a fragment", ErrBadURL)
	}
	if err := reach.checkHost(u.Hostname()); err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return nil, fmt.Errorf("%w: %s is a %s address, which callbacks may not reach", ErrBadURL, r.addr, r.class.kind)
		}
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return u, nil
}

// foldHost is a non-ASCII host as the HTTP client will connect to it: Go
// maps a host through IDNA before it dials, which folds compatibility
// forms (NFKC) and the ideographic full stops, so that "１２７.０.０.１" and
// "①②⑦.⓪.⓪.①" reach 127.0.0.1. Checking the folded host refuses those at
// submission, as their plain spelling is.
func foldHost(host string) string {
	if !strings.ContainsFunc(host, func(r rune) bool { return r > unicode.MaxASCII }) {
		return host
	}
	return strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".").Replace(norm.NFKC.String(host))
}

// urlErrorReason drops the URL itself from a parse error, which may carry
// a token in its query.
func urlErrorReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return "cannot be parsed"
}
