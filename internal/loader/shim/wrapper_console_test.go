package shim_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// consoleCase is one console.log call: its arguments as guest source and
// the message Node's util.format makes of them. plain cases are the ones
// the wrapper renders without loading the formatter.
type consoleCase struct {
	args  string
	want  string
	plain bool
}

var consoleCases = []consoleCase{
	{``, ``, true},
	{`"a", 1`, `a 1`, true},
	{`1, "b", -0`, `1 b -0`, true},
	{`0, -0, 0.1, NaN, Infinity, -Infinity, 1e21, 2 ** 53`, `0 -0 0.1 NaN Infinity -Infinity 1e+21 9007199254740992`, true},
	{`true, false, null, undefined`, `true false null undefined`, true},
	{`"x", "100%", "%d"`, `x 100% %d`, true},
	{`5, "%d", 7`, `5 %d 7`, true},
	{`"", ""`, ` `, true},
	{`"line\nnext", 2`, "line\nnext 2", true},
	{`"50%"`, `50%`, true},
	{`"%d items", 3`, `3 items`, false},
	{`"50%", 1`, `50% 1`, false},
	{`"%s=%i", "n", 4.5`, `n=4`, false},
	{`"%%", true`, `% true`, false},
	{`"a", 1n`, `a 1n`, false},
	{`"a", [1]`, `a [ 1 ]`, false},
}

// plainPatches are what a guest could replace to change how the wrapper
// renders plain arguments. The formatter, loaded after them, may follow
// them (only its own text changes), so they are checked on plain cases.
var plainPatches = map[string]string{
	"none":                          ``,
	"String.prototype.includes no":  `String.prototype.includes = () => false;`,
	"String.prototype.includes yes": `String.prototype.includes = () => true;`,
	"String.prototype.includes err": `String.prototype.includes = () => { throw new Error("patched"); };`,
	"Number and Boolean toString":   `Number.prototype.toString = () => "forged"; Boolean.prototype.toString = () => "forged"; Number.prototype.valueOf = () => 9;`,
	"Symbol.toPrimitive":            `Number.prototype[Symbol.toPrimitive] = () => "forged"; Boolean.prototype[Symbol.toPrimitive] = () => "forged";`,
	"Array.prototype":               `Array.prototype.join = () => "forged"; Array.prototype[Symbol.iterator] = function* () { yield "forged"; }; Object.defineProperty(Array.prototype, 0, { configurable: true, get() { return "forged"; } });`,
	"String concatenation":          `String.prototype.concat = () => "forged"; String.prototype[Symbol.toPrimitive] = () => "forged";`,
}

// TestConsoleMessagesAsNodeFormatsThem checks the message of each case,
// from the guest's top level and its handler, with the formatter or
// without, and that no patch changes a plain one.
func TestConsoleMessagesAsNodeFormatsThem(t *testing.T) {
	t.Parallel()
	l := loadertest.StartLocal(t, zerolog.Nop(), loadertest.Processes(1))
	t.Cleanup(func() { l.Close() })
	for name, patch := range plainPatches {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var cases []consoleCase
			for _, c := range consoleCases {
				if c.plain || patch == "" {
					cases = append(cases, c)
				}
			}
			var calls strings.Builder
			for _, c := range cases {
				fmt.Fprintf(&calls, "console.log(%s);\n", c.args)
			}
			code := patch + "\n" + calls.String() + "export default { fetch() {\n" + calls.String() + "return new Response(\"ok\"); } }"
			events, err := loadertest.Run(t, l, loadertest.Job("console", code, 5*time.Second))
			if err != nil {
				t.Fatalf("Execute = %v", err)
			}
			if res := loadertest.LastResult(t, events); !res.Success {
				t.Fatalf("result = %+v", res.Error)
			}
			var logs []string
			for _, ev := range events {
				if ev.Type == execution.EventLog {
					logs = append(logs, ev.Log.Message)
				}
			}
			if len(logs) != 2*len(cases) {
				t.Fatalf("got %d logs, want %d: %q", len(logs), 2*len(cases), logs)
			}
			for i, got := range logs {
				if c := cases[i%len(cases)]; got != c.want {
					t.Errorf("console.log(%s) = %q, want %q", c.args, got, c.want)
				}
			}
		})
	}
}
