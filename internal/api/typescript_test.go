package api_test

import (
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

func TestTypeScriptModules(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{
		"modules": map[string]string{
			"plugin.ts": `import type { Options } from "./types";
import { Level, label } from "./types.js";
import config from "./config.json";

const options = { verbose: true, level: Level.Warn } satisfies Options;

export default {
  async fetch(request: Request, env: { NAME: string }): Promise<Response> {
    console.log(label(options.level), env.NAME, config.retries as number);
    return Response.json({ level: Level[options.level] });
  },
};`,
			"types.ts": `export interface Options { verbose: boolean; level: Level }
export enum Level { Info = 1, Warn, Error }
export function label(l: Level): string { return "level-" + Level[l].toLowerCase(); }`,
			"config.json": `{"retries": 3}`,
		},
		"env": map[string]any{"NAME": "ts"},
	})
	wantSuccess(t, res)
	if res.Stdout != "level-warn ts 3" || res.Response.Body != `{"level":"Warn"}` {
		t.Errorf("stdout %q, body %q", res.Stdout, res.Response.Body)
	}
}

func TestTypeScriptCode(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{
		"language": "typescript",
		"code":     "const greet = (who: string): string => `hi ${who}`;\nexport default { fetch(): Response { console.log(greet(\"there\")); return new Response(\"ok\"); } };",
	})
	wantSuccess(t, res)
	if res.Stdout != "hi there" {
		t.Errorf("stdout = %q", res.Stdout)
	}
}

func TestTypeScriptSyntaxError(t *testing.T) {
	t.Parallel()
	body := map[string]any{"mainModule": "main.ts", "modules": map[string]string{
		"main.ts": "import { x } from \"./lib\";\nexport default { fetch(): Response { return new Response(String(x)); } };",
		"lib.ts":  "export const x: number = 1;\nexport const y: string = ;\n",
	}}
	res := execute(t, body)
	wantError(t, res, execution.CodeSyntaxError, "Unexpected")
	if !strings.Contains(res.Error.Stack, "lib.ts:2:") {
		t.Errorf("stack = %q, want the position in lib.ts line 2", res.Error.Stack)
	}
	// Streams get the same answer.
	got := openStream(t, gatewayURL(t), "application/x-ndjson", body).all(true)
	if r := resultOf(got); r.Error == nil || r.Error.Code != execution.CodeSyntaxError {
		t.Errorf("stream result = %+v", r)
	}
}

func TestTypeScriptStackNamesTheSource(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"modules": map[string]string{
		"main.ts": `import { check } from "./check";

type Input = { n: number };

export default {
  fetch(): Response {
    const input: Input = { n: -1 };
    console.error(new Error("logged"));
    check(input.n);
    return new Response("unreachable");
  },
};`,
		"check.ts": `// Validation helpers.
export function check(n: number): void {
  if (n < 0) {
    throw new RangeError("negative: " + n);
  }
}`,
	}, "mainModule": "main.ts"})
	wantError(t, res, execution.CodeException, "RangeError: negative: -1")
	if !strings.Contains(res.Error.Stack, "check.ts:4:") || !strings.Contains(res.Error.Stack, "main.ts:9:") {
		t.Errorf("stack = %q, want frames at check.ts:4 and main.ts:9", res.Error.Stack)
	}
	if !strings.Contains(res.Stderr, "main.ts:8:") {
		t.Errorf("stderr = %q, want the logged error's stack at main.ts:8", res.Stderr)
	}
}

// TestTypeScriptStackTheGuestReads: a stack a TypeScript guest reads
// itself, after an await, holds its own frames only (no frame of the
// capture wrapper's, as a bare Worker's), which the gateway maps to its
// sources in the log.
func TestTypeScriptStackTheGuestReads(t *testing.T) {
	t.Parallel()
	res := execute(t, map[string]any{"modules": map[string]string{
		"main.ts": `import { check } from "./check";

export default {
  async fetch(): Promise<Response> {
    await null;
    try { check(-1); } catch (e) {
      const stack: string = (e as Error).stack ?? "";
      console.log(stack);
      console.log("lines " + stack.split("\n").length + " wrapper " + stack.includes("__dw_"));
    }
    return new Response("ok");
  },
};`,
		"check.ts": `// Validation helpers.
export function check(n: number): void {
  if (n < 0) {
    throw new RangeError("negative: " + n);
  }
}`,
	}, "mainModule": "main.ts"})
	if !res.Success {
		t.Fatalf("error = %+v", res.Error)
	}
	if !strings.Contains(res.Stdout, "check.ts:4:") || !strings.Contains(res.Stdout, "main.ts:6:") {
		t.Errorf("stdout = %q, want frames at check.ts:4 and main.ts:6", res.Stdout)
	}
	if !strings.Contains(res.Stdout, "lines 3 wrapper false") {
		t.Errorf("stdout = %q, want the guest's stack of 3 lines (the error, check, fetch), no wrapper frame", res.Stdout)
	}
}

// TestTypeScriptBundleNameClash: a TypeScript main module beside modules
// already named as its bundle would be runs, whatever the clash.
func TestTypeScriptBundleNameClash(t *testing.T) {
	t.Parallel()
	for name, extra := range map[string]map[string]string{
		"main.js":                    {"main.js": `export const x = 1;`},
		"main.js and main.bundle.js": {"main.js": `export const x = 1;`, "main.bundle.js": `export const y = 2;`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			modules := map[string]string{"main.ts": `export default { fetch(): Response { return new Response("typed"); } };`}
			for k, v := range extra {
				modules[k] = v
			}
			res := execute(t, map[string]any{"modules": modules, "mainModule": "main.ts"})
			wantSuccess(t, res)
			if res.Response.Body != "typed" {
				t.Errorf("body = %q, want the TypeScript main module's answer", res.Response.Body)
			}
		})
	}
}
