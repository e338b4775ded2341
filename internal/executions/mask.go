package executions

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/redact"
)

// maskResult masks what the guest returned: the error, the outbound
// requests, and the response's body (the bytes of a binary one) and header
// names and values. Stdout and stderr are built from logs masked already.
func maskResult(m *redact.Masker, res *execution.Result) {
	if m == nil {
		return
	}
	for i := range res.Outbound {
		res.Outbound[i].Method = m.Mask(res.Outbound[i].Method)
		res.Outbound[i].URL = m.Mask(res.Outbound[i].URL)
	}
	if res.Error != nil {
		res.Error.Message = m.Mask(res.Error.Message)
		res.Error.Stack = m.Mask(res.Error.Stack)
	}
	if len(res.ReturnValue) > 0 {
		// A secret inside a JSON string is masked in place (the mask needs
		// no escaping); one that spans the JSON's own syntax leaves no
		// valid JSON, and then no value at all is better than a leak.
		masked := m.Mask(string(res.ReturnValue))
		if !json.Valid([]byte(masked)) {
			masked = strconv.Quote(redact.Text)
		}
		res.ReturnValue = json.RawMessage(masked)
	}
	if r := res.Response; r != nil {
		raw, err := base64.StdEncoding.DecodeString(r.Body)
		if r.BodyEncoding == execution.EncodingBase64 && err == nil {
			// Mask the bytes of a binary body too; it stays base64.
			if masked := m.Mask(string(raw)); masked != string(raw) {
				r.Body = base64.StdEncoding.EncodeToString([]byte(masked))
			}
		} else {
			// utf8, or whatever else a backend let through: as text.
			r.Body = m.Mask(r.Body)
		}
		r.Headers = maskHeaders(m, r.Headers)
	}
}

// maskHeaders masks header names and values. Names that mask alike are
// merged as a repeated header is: values joined with ", ", in name order.
func maskHeaders(m *redact.Masker, h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for _, name := range slices.Sorted(maps.Keys(h)) {
		k, v := m.Mask(name), m.Mask(h[name])
		if prev, ok := out[k]; ok {
			v = prev + ", " + v
		}
		out[k] = v
	}
	return out
}
