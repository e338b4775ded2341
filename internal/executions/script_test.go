package executions

import (
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestImportsEnd: the import declarations a script starts with (and the
// comments among them) stay at module level, in every spelling; anything
// else, dynamic imports and import.meta included, is the body.
func TestImportsEnd(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ src, head string }{
		{"return 1", ""},
		{"import x from 'y'\nreturn x", "import x from 'y'"},
		{"import x from 'y';return x", "import x from 'y';"},
		{"import{a}from\"b\";a()", "import{a}from\"b\";"},
		{"import * as ns from 'm'; ns.f()", "import * as ns from 'm';"},
		{"import 'side-effect';\nrun()", "import 'side-effect';"},
		{"import d, { a as b, c } from './x.js'\nimport e from \"./e.js\"\nb()", "import d, { a as b, c } from './x.js'\nimport e from \"./e.js\""},
		{"import cfg from './c.json' with { type: 'json' };\nuse(cfg)", "import cfg from './c.json' with { type: 'json' };"},
		{"import cfg from './c.json' assert { type: 'json' }\nuse(cfg)", "import cfg from './c.json' assert { type: 'json' }"},
		{"// lead\n/* block */ import x from 'y' // tail\nx()", "// lead\n/* block */ import x from 'y'"},
		{"const m = await import('./m.js')", ""},
		{"import('./m.js').then(f)", ""},
		{"import.meta.url", ""},
		{"imported = 1", ""},
		{"import x from 'unterminated\nx()", ""},
		{"import x from 'a'; console.log(1); import y from 'b'", "import x from 'a';"},
	} {
		if got := tt.src[:importsEnd(tt.src)]; got != tt.head {
			t.Errorf("importsEnd(%q) keeps %q, want %q", tt.src, got, tt.head)
		}
	}
}

// TestModeOf: an export, in any spelling, makes a Worker module.
func TestModeOf(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]string{
		"export default { fetch() {} }":                    execution.ModeWorker,
		"export default class extends WorkerEntrypoint {}": execution.ModeWorker,
		"const h = {}; export { h as default }":            execution.ModeWorker,
		"export {default} from './w.js'":                   execution.ModeWorker,
		"export { a, b as default, c }":                    execution.ModeWorker,
		"console.log(1 + 1)":                               execution.ModeScript,
		"export const x = 1":                               execution.ModeWorker,
		"export async function f() {}":                     execution.ModeWorker,
		"export * from './m.js'":                           execution.ModeWorker,
		"const exports = {}; exports.x = 1":                execution.ModeScript,
		"exporter.send(1)":                                 execution.ModeScript,
		"return exported":                                  execution.ModeScript,
	} {
		if got := modeOf(src); got != want {
			t.Errorf("modeOf(%q) = %s, want %s", src, got, want)
		}
	}
}
