package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
)

// Exit statuses of gateway exec.
const (
	exitGuest       = 1   // the guest failed
	exitUsage       = 2   // bad flags or arguments
	exitGateway     = 3   // the gateway refused the request or was unreachable
	exitInterrupted = 130 // interrupted before the execution ended
)

const execUsage = `usage: gateway exec [flags] [FILE|-]

Runs code (FILE, or standard input for "-" or no FILE) through a gateway:
a plain script (no export; the body of an async function, await and return
allowed) or a Worker module (export default { fetch }). Prints its console
output as it happens: console.log/info/debug to stdout, console.warn/error
to stderr; then what it gave back: the body of its Response, or the value
it returned, as JSON.

flags:
%s
exit status:
  0    the code ended without an error
  1    the guest failed; "error: <code>: <message>" on stderr
  2    bad flags or arguments, or a file that cannot be read
  3    the gateway refused the request or could not be reached
  130  interrupted
`

// exitError makes main exit with code; its message was printed already.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// execOptions are the flags and argument of gateway exec.
type execOptions struct {
	url, key      string
	env, secrets  []string
	modules       []string
	compatFlags   []string
	capabilities  []string
	outbound      string
	compatDate    string
	timeout       time.Duration
	language      string
	json          bool
	file          string
	allowOutbound bool   // --allow-outbound was given
	async         bool   // --async: queue it, print its id
	callback      string // --callback-url, with --async
	follow        string // --follow ID: print a queued execution's events
	script        string // --script NAME[@VERSION]: run a stored script, no FILE
	deps          []string
}

// execCommand runs `gateway exec`: it sends a Worker to a gateway and prints
// what it did.
func execCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	term := newTerminal(stdout, stderr, getenv)
	opts, err := parseExec(args, getenv, stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return term.usage(err)
	}
	if opts.follow != "" {
		return followCommand(ctx, opts, term)
	}
	req, err := opts.request(stdin)
	if err != nil {
		return term.usage(err)
	}
	c := client.New(opts.url, client.WithAPIKey(opts.key))
	if opts.async {
		return submitCommand(ctx, c, req, opts, stdout, term)
	}
	if opts.json {
		res, err := c.Execute(ctx, req)
		if err != nil {
			return term.refused(err)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
		return term.outcome(res)
	}
	s, err := c.Stream(ctx, req)
	if err != nil {
		return term.refused(err)
	}
	defer s.Close()
	for s.Next() {
		switch ev := s.Event(); ev.Type {
		case execution.EventLog:
			term.log(ev.Log)
		case execution.EventRestart:
			term.restart(ev.Reason)
		case execution.EventInstall:
			term.install(ev.Install)
		}
	}
	if err := s.Err(); err != nil {
		return term.refused(err)
	}
	term.answer(s.Result())
	return term.outcome(s.Result())
}

// parseExec reads gateway exec's flags; --help prints the usage to stdout.
func parseExec(args []string, getenv func(string) string, stdout io.Writer) (*execOptions, error) {
	o := &execOptions{}
	fs := pflag.NewFlagSet("exec", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller
	fs.SortFlags = false
	fs.StringVar(&o.url, "url", "", "gateway `URL` (default $GATEWAY_URL, else http://127.0.0.1:8080)")
	fs.StringVar(&o.key, "key", "", "API `key` (default $GATEWAY_API_KEY)")
	fs.StringArrayVar(&o.env, "env", nil, "`K=V` in the guest's env; V is read as JSON if it is JSON, else as a string (repeatable)")
	fs.StringArrayVar(&o.secrets, "secret", nil, "`K=V` in the guest's env, its value masked as [REDACTED] in the output (repeatable)")
	fs.StringVar(&o.outbound, "allow-outbound", "", "allow network access: alone, to any public host; =`HOSTS` only to those, comma-separated (api.example.com,*.example.net)")
	fs.Lookup("allow-outbound").NoOptDefVal = "true"
	fs.StringArrayVar(&o.capabilities, "capability", nil, "give the guest env.`NAME`, the gateway's capability NAME (GET /capabilities lists them): a service it calls without seeing its credentials (repeatable)")
	fs.StringVar(&o.compatDate, "compat-date", "", "compatibility `date` (YYYY-MM-DD; default: the gateway's)")
	fs.StringSliceVar(&o.compatFlags, "compat-flag", nil, "compatibility `flag` (repeatable)")
	fs.DurationVar(&o.timeout, "timeout", 0, "wall-clock limit of the execution, a `duration` such as 5s (default: the gateway's)")
	fs.StringArrayVar(&o.modules, "module", nil, "another module, named by its `path` relative to FILE's directory; FILE is then the main module (repeatable)")
	fs.StringVar(&o.language, "language", "", "`language` of FILE: javascript or typescript (default: typescript for a .ts or .mts FILE)")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON when the execution ends, instead of streaming")
	fs.BoolVar(&o.async, "async", false, "queue the execution on the gateway and print its id at once (see --follow)")
	fs.StringVar(&o.callback, "callback-url", "", "with --async: `URL` the gateway sends the record to when the execution ends")
	fs.StringVar(&o.script, "script", "", "run the stored script `NAME[@VERSION]` (gateway scripts push) instead of a FILE")
	fs.StringArrayVar(&o.deps, "dep", nil, "an npm dependency of FILE, `NAME@RANGE` (zod@^3.23.0; NAME alone: latest) (repeatable)")
	fs.StringVar(&o.follow, "follow", "", "print the events of execution `ID` from its start (or where they are), then as they happen, until it ends; no FILE")
	fs.Usage = func() { fmt.Fprintf(stdout, execUsage, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := o.checkAsync(fs); err != nil {
		return nil, err
	}
	switch n := fs.NArg(); {
	case o.script != "" && n > 0:
		return nil, fmt.Errorf("--script takes no FILE, got %q", fs.Args())
	case o.script != "":
	case n == 0:
		o.file = "-"
	case n == 1:
		o.file = fs.Arg(0)
	default:
		return nil, fmt.Errorf("one FILE at most, got %d: %q", fs.NArg(), fs.Args())
	}
	if o.url == "" {
		o.url = getenv("GATEWAY_URL")
	}
	if o.url == "" {
		o.url = "http://127.0.0.1:8080"
	}
	if o.key == "" {
		o.key = getenv("GATEWAY_API_KEY")
	}
	o.allowOutbound = fs.Changed("allow-outbound")
	if o.timeout < 0 {
		return nil, fmt.Errorf("--timeout must not be negative, got %v", o.timeout)
	}
	return o, nil
}

// request builds the execution request, reading FILE (or stdin) and modules.
func (o *execOptions) request(stdin io.Reader) (*execution.Request, error) {
	source := ""
	if o.script == "" {
		var err error
		if source, err = readSource(o.file, stdin); err != nil {
			return nil, err
		}
	}
	var err error
	req := &execution.Request{
		CompatibilityDate:  o.compatDate,
		CompatibilityFlags: o.compatFlags,
		TimeoutMs:          int(math.Ceil(float64(o.timeout) / float64(time.Millisecond))),
		Capabilities:       o.capabilities,
	}
	if req.Env, err = pairs(o.env, "--env", envValue); err != nil {
		return nil, err
	}
	if req.Secrets, err = pairs(o.secrets, "--secret", func(v string) string { return v }); err != nil {
		return nil, err
	}
	if o.allowOutbound {
		req.AllowOutbound = outboundOf(o.outbound)
	}
	if req.Dependencies, err = dependencyFlags(o.deps); err != nil {
		return nil, err
	}
	if o.script != "" {
		req.Script = o.script
		return req, nil
	}
	if len(o.modules) == 0 {
		req.Code = source
		req.Language = o.language
		if req.Language == "" && isTypeScript(o.file) {
			req.Language = "typescript"
		}
		return req, nil
	}
	req.Modules, req.MainModule, err = o.moduleSet(source)
	return req, err
}

// moduleSet names FILE and every --module by its path relative to FILE's
// directory (the current one for stdin, which is main.js or main.ts).
func (o *execOptions) moduleSet(source string) (map[string]string, string, error) {
	main, dir := filepath.Base(o.file), filepath.Dir(o.file)
	if o.file == "-" {
		main, dir = "main.js", "."
		if o.language == "typescript" {
			main = "main.ts"
		}
	}
	modules := map[string]string{main: source}
	base, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	for _, path := range o.modules {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, "", err
		}
		rel, err := filepath.Rel(base, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, "", fmt.Errorf("--module %s is not under %s, the main module's directory", path, dir)
		}
		name := filepath.ToSlash(rel)
		if _, dup := modules[name]; dup {
			return nil, "", fmt.Errorf("--module %s: a module named %q was given already", path, name)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", err
		}
		modules[name] = string(data)
	}
	return modules, main, nil
}

func readSource(file string, stdin io.Reader) (string, error) {
	if file != "-" {
		data, err := os.ReadFile(file)
		return string(data), err
	}
	if stdin == nil {
		return "", errors.New("no FILE given and no standard input")
	}
	data, err := io.ReadAll(stdin)
	if err != nil {
		return "", fmt.Errorf("read standard input: %w", err)
	}
	return string(data), nil
}

func isTypeScript(file string) bool {
	return strings.HasSuffix(file, ".ts") || strings.HasSuffix(file, ".mts")
}

// pairs reads K=V flag values into a map, converting each V with value.
func pairs[V any](list []string, flag string, value func(string) V) (map[string]V, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(map[string]V, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q must be NAME=VALUE", flag, kv)
		}
		out[k] = value(v)
	}
	return out, nil
}

// envValue reads v as JSON if it is JSON (42, true, {"a": 1}), else as a
// string. Numbers keep their digits exactly.
func envValue(v string) any {
	if !json.Valid([]byte(v)) {
		return v
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return v
	}
	return out
}

// outboundOf reads --allow-outbound's value: "true" (the flag alone), "false",
// or a comma-separated host list.
func outboundOf(v string) execution.Outbound {
	switch v {
	case "true":
		return execution.Outbound{All: true}
	case "false", "":
		return execution.Outbound{}
	}
	var hosts []string
	for h := range strings.SplitSeq(v, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return execution.Outbound{Hosts: hosts}
}

// dependencyFlags reads --dep values, NAME@RANGE (a scoped @scope/name
// keeps its first @), into dependencies.
func dependencyFlags(deps []string) (map[string]string, error) {
	if len(deps) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, d := range deps {
		at := strings.LastIndex(d, "@")
		name, rng := d, "latest"
		if at > 0 {
			name, rng = d[:at], d[at+1:]
		}
		if name == "" || rng == "" {
			return nil, fmt.Errorf("--dep %q must be NAME@RANGE", d)
		}
		out[name] = rng
	}
	return out, nil
}
