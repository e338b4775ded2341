package executions

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/dynamic-workers/gateway/execution"
)

func (v *validator) guestRequest(members map[string]json.RawMessage, job *execution.Job) {
	raw, ok := members["request"]
	if !ok {
		return
	}
	var fields map[string]json.RawMessage
	if !v.decode("request", raw, &fields, "an object {method, url, headers, body, bodyEncoding}") {
		return
	}
	r := &job.Request
	for name := range fields {
		switch name {
		case "method", "url", "headers", "body", "bodyEncoding":
		default:
			v.add("request."+name, fieldUnknown, "unknown field %q", "request."+name)
		}
	}
	if v.decode("request.method", fields["method"], &r.Method, "a string") && !tokenPattern.MatchString(r.Method) {
		v.add("request.method", fieldInvalid, "%q is not an HTTP method", r.Method)
	}
	r.Method = strings.ToUpper(r.Method)
	var rawURL string
	if v.decode("request.url", fields["url"], &rawURL, "a string") {
		if u, err := guestURL(rawURL); err != nil {
			v.add("request.url", fieldInvalid, "%v", err)
		} else {
			r.URL = u
		}
	}
	var headers map[string]string
	if v.decode("request.headers", fields["headers"], &headers, "an object of header name to string") {
		for name, value := range headers {
			if !tokenPattern.MatchString(name) {
				v.add("request.headers", fieldInvalid, "%q is not a valid header name", name)
			} else if strings.ContainsAny(value, "\r\n\x00") {
				v.add("request.headers."+name, fieldInvalid, "header values must not contain CR, LF or NUL")
			}
		}
		r.Headers = headers
	}
	v.guestBody(fields, r)
}

func (v *validator) guestBody(fields map[string]json.RawMessage, r *execution.GuestRequest) {
	encoding := execution.EncodingUTF8
	if v.decode("request.bodyEncoding", fields["bodyEncoding"], &encoding, `"utf8" or "base64"`) &&
		encoding != execution.EncodingUTF8 && encoding != execution.EncodingBase64 {
		v.add("request.bodyEncoding", fieldInvalid, `bodyEncoding must be "utf8" or "base64", not %q`, encoding)
	}
	var body string
	if !v.decode("request.body", fields["body"], &body, "a string") {
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		v.add("request.body", fieldConflict, "a %s request cannot have a body", r.Method)
		return
	}
	if encoding == execution.EncodingBase64 {
		if _, err := base64.StdEncoding.DecodeString(body); err != nil {
			v.add("request.body", fieldInvalid, "body is not valid base64: %v", err)
			return
		}
	}
	r.Body = body
	r.BodyEncoding = encoding
}

// guestURL resolves a request url: an absolute http(s) URL, or a path
// relative to http://localhost/.
func guestURL(raw string) (string, error) {
	if strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//") {
		raw = strings.TrimSuffix(defaultGuestURL, "/") + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", raw)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("url must be a path such as /api or an absolute http(s) URL, not %q", raw)
	}
	return u.String(), nil
}
