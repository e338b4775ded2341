package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
)

// terminal prints an execution for people, in colour where the output is a
// terminal.
type terminal struct {
	stdout, stderr     io.Writer
	colorOut, colorErr bool
}

// ANSI styles.
const (
	styleDim    = "\x1b[2m"
	styleRed    = "\x1b[31m"
	styleYellow = "\x1b[33m"
	styleReset  = "\x1b[0m"
)

func newTerminal(stdout, stderr io.Writer, getenv func(string) string) terminal {
	color := getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
	return terminal{
		stdout:   stdout,
		stderr:   stderr,
		colorOut: color && isTerminal(stdout),
		colorErr: color && isTerminal(stderr),
	}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// line writes s and a newline to w, in style if color is on.
func line(w io.Writer, color bool, style, s string) {
	if color && style != "" {
		s = style + s + styleReset
	}
	_, _ = io.WriteString(w, s+"\n")
}

// log prints one console line of the guest to the stream it belongs to.
func (t terminal) log(l *execution.Log) {
	w, color := t.stdout, t.colorOut
	if l.Stream == execution.StreamStderr {
		w, color = t.stderr, t.colorErr
	}
	style := ""
	switch l.Level {
	case "debug":
		style = styleDim
	case "warn":
		style = styleYellow
	case "error":
		style = styleRed
	}
	line(w, color, style, l.Message)
}

// answer prints what the code gave back: its Response's body, decoded,
// or the value it returned, as JSON; ending with a newline.
func (t terminal) answer(res *execution.Result) {
	if res == nil {
		return
	}
	if len(res.ReturnValue) > 0 {
		_, _ = t.stdout.Write(append(res.ReturnValue, '\n'))
		return
	}
	resp := res.Response
	if resp == nil || resp.Body == "" {
		return
	}
	body := []byte(resp.Body)
	if resp.BodyEncoding == execution.EncodingBase64 {
		if raw, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = raw
		}
	}
	_, _ = t.stdout.Write(body)
	if body[len(body)-1] != '\n' {
		_, _ = io.WriteString(t.stdout, "\n")
	}
}

// restart marks, on stderr, where the gateway began the execution again:
// the output above the marker is from a run that was lost.
func (t terminal) restart(reason string) {
	line(t.stderr, t.colorErr, styleDim, "note: the gateway runs the execution again ("+reason+"); the output above is void")
}

// install notes the dependencies being resolved, then what they resolved
// to, on stderr: the guest's output stays alone on stdout.
func (t terminal) install(in *execution.Install) {
	if in != nil {
		line(t.stderr, t.colorErr, styleDim, "note: "+in.String())
	}
}

// fail prints "error: code: message" and returns an exitError with status.
func (t terminal) fail(status int, code, message string) error {
	line(t.stderr, t.colorErr, styleRed, "error: "+code+": "+message)
	return &exitError{code: status, err: fmt.Errorf("%s: %s", code, message)}
}

// outcome reports how the execution ended: nil on success.
func (t terminal) outcome(res *execution.Result) error {
	if res.Truncated {
		line(t.stderr, t.colorErr, styleDim, "note: the gateway cut the output at its limits")
	}
	if res.Success {
		return nil
	}
	if res.Error == nil {
		return t.fail(exitGuest, "unknown", "the execution did not succeed")
	}
	err := t.fail(exitGuest, string(res.Error.Code), res.Error.Message)
	// The stack starts with the message, which is printed already.
	stack := strings.TrimPrefix(res.Error.Stack, res.Error.Message)
	if stack = strings.TrimLeft(stack, "\n"); stack != "" {
		line(t.stderr, t.colorErr, styleDim, stack)
	}
	return err
}

// refused reports a request the gateway did not run, or could not be sent.
func (t terminal) refused(err error) error {
	var gwErr *client.Error
	var urlErr *url.Error
	switch {
	case errors.Is(err, context.Canceled):
		return t.fail(exitInterrupted, "interrupted", "stopped before the execution ended")
	case errors.As(err, &gwErr):
		code := gwErr.Code
		if code == "" {
			code = fmt.Sprintf("http_%d", gwErr.StatusCode)
		}
		failure := t.fail(exitGateway, code, gwErr.Detail)
		for _, fe := range gwErr.Errors {
			line(t.stderr, false, "", fmt.Sprintf("  %s: %s (%s)", fe.Field, fe.Detail, fe.Code))
		}
		if gwErr.RetryAfter > 0 {
			line(t.stderr, false, "", "  retry after "+gwErr.RetryAfter.String())
		}
		return failure
	case errors.As(err, &urlErr):
		return t.fail(exitGateway, "unreachable", err.Error())
	default:
		return t.fail(exitGateway, "gateway_error", err.Error())
	}
}

// usage reports bad flags or arguments.
func (t terminal) usage(err error) error {
	failure := t.fail(exitUsage, "usage", err.Error())
	line(t.stderr, false, "", `run "gateway exec --help" for usage`)
	return failure
}
