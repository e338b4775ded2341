package mcp

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dynamic-workers/gateway/execution"
)

// summary is the text of a result an agent reads: how it ended, then what
// the guest printed and returned, or the error with its code and stack,
// each part as bounded as the structured content's.
func summary(res *execution.Result, t *toolResult) string {
	var b strings.Builder
	if t.Success {
		fmt.Fprintf(&b, "success (%s, %s, %.1f ms)", t.Mode, t.ID, t.DurationMs)
	} else {
		code := execution.Code("failed")
		if t.Error != nil {
			code = t.Error.Code
		}
		fmt.Fprintf(&b, "failed: %s (%s, %.1f ms)", code, t.ID, t.DurationMs)
	}
	if t.Truncated {
		b.WriteString(", output truncated by the server's limits")
	}
	if e := t.Error; e != nil {
		stack := e.Stack
		if !strings.Contains(stack, e.Message) {
			stack = strings.TrimSpace(e.Message + "\n" + stack)
		}
		section(&b, "error", stack)
	}
	switch {
	case t.ReturnValue != nil:
		v, _ := json.Marshal(*t.ReturnValue)
		section(&b, "returned", string(v))
	case t.ReturnValueBytes > 0:
		fmt.Fprintf(&b, "\nreturned: a value of %d bytes of JSON, too large to show (return less, or print a part)", t.ReturnValueBytes)
	}
	section(&b, "stdout", t.Stdout)
	section(&b, "stderr", t.Stderr)
	if r := t.Response; r != nil {
		fmt.Fprintf(&b, "\nresponse: %d", r.Status)
		if ct := r.Headers["content-type"]; ct != "" {
			fmt.Fprintf(&b, " (%s)", ct)
		}
		switch {
		case r.BodyEncoding == execution.EncodingBase64:
			fmt.Fprintf(&b, "\nbody: binary, %d base64 characters", r.BodyBytes)
		default:
			section(&b, "body", r.Body)
			if len(r.Body) < r.BodyBytes {
				fmt.Fprintf(&b, "\n[body cut at %d of %d bytes]", len(r.Body), r.BodyBytes)
			}
		}
	}
	if denied := deniedHosts(res.Outbound); len(denied) > 0 {
		if len(denied) > maxOutbound {
			denied = append(denied[:maxOutbound], "…")
		}
		fmt.Fprintf(&b, "\noutbound denied: %s (allowOutbound did not allow them)", head(strings.Join(denied, ", "), maxOutbound*maxURLBytes, new(bool)))
	}
	return b.String()
}

// section writes a titled part of the summary, if it has text.
func section(b *strings.Builder, title, text string) {
	if text == "" {
		return
	}
	b.WriteString("\n" + title + ":\n" + text)
}

// deniedHosts lists the URLs the guest tried to reach and was refused.
func deniedHosts(out []execution.Outgoing) []string {
	set := map[string]bool{}
	for _, o := range out {
		if o.Denied {
			set[o.URL] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
