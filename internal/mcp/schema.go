package mcp

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	"go.yaml.in/yaml/v3"

	gateway "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/execution"
)

// The execute tool takes an execution request as POST /execute does, with
// one difference that lets its schema say what is required without a
// top-level oneOf (which some model APIs refuse in a tool's schema): code
// is always the main module, and modules are the other modules it imports.

// codeDescription and modulesDescription are the execute tool's own
// descriptions of code and modules; every other member's is openapi.yaml's.
const (
	codeDescription = `The code to run: a plain script, or an ES module with an export.

A plain script runs as the body of an async function: top-level await and return work, and request, env and ctx are in scope; the value it returns comes back as returnValue (JSON). Imports at its top stay imports.
  const r = await fetch("https://example.com"); return { status: r.status };

A module whose default export has a fetch(request, env, ctx) handler runs as a Cloudflare Worker; the Response it returns comes back as response (a returned non-Response value as returnValue).
  export default { async fetch(request, env) { return new Response("hi " + env.NAME); } };

npm packages: name them in dependencies ({"nanoid": "^5"}) and import them ("import { nanoid } from 'nanoid'"), in either kind.

It is the module main.js (main.ts with language typescript).`
	modulesDescription = `Other modules the code imports by relative path ("./util.js"), file name to source. The extension decides the type: .js/.mjs ES module, .ts/.mts TypeScript, .json JSON (imported as its value), .txt text (imported as a string). Names are plain relative paths (lib/util.js), not main.js or main.ts (that is code).`
)

// inputSchema is the execute tool's input schema: the members of an
// execution request as openapi.yaml defines them (ExecuteFields, the
// contract the service validates against), with this service's bounds
// written in; code required, mainModule left out (code is the main
// module), script left to run_script, capabilities only where some exist.
func inputSchema(b execution.Bounds, capabilities bool) (json.RawMessage, error) {
	return requestSchema(b, capabilities, "code", "script")
}

// scriptSchema is run_script's input schema: an execution request naming
// a stored script, which brings its own code, dependencies and
// compatibility settings; script required.
func scriptSchema(b execution.Bounds, capabilities bool) (json.RawMessage, error) {
	return requestSchema(b, capabilities, "script", "code", "modules", "language", "dependencies", "compatibilityDate", "compatibilityFlags")
}

// requestSchema is ExecuteFields with the bounds written in, required
// naming the one member required, without mainModule and the members
// left out.
func requestSchema(b execution.Bounds, capabilities bool, required string, leftOut ...string) (json.RawMessage, error) {
	fields, err := openAPISchema("ExecuteFields")
	if err != nil {
		return nil, err
	}
	props, _ := fields["properties"].(map[string]any)
	if props == nil {
		return nil, fmt.Errorf("openapi.yaml: ExecuteFields has no properties")
	}
	delete(props, "mainModule")
	for _, name := range leftOut {
		delete(props, name)
	}
	if !capabilities {
		delete(props, "capabilities")
	}
	set := func(name string, edit func(p map[string]any)) {
		if p, ok := props[name].(map[string]any); ok {
			edit(p)
		}
	}
	set("code", func(p map[string]any) {
		p["description"] = codeDescription + fmt.Sprintf("\n\nAt most %d bytes, with the modules.", b.MaxCodeBytes)
	})
	set("modules", func(p map[string]any) {
		p["description"] = modulesDescription
		if b.MaxModules > 1 {
			p["maxProperties"] = b.MaxModules - 1
		}
		delete(p, "minProperties")
	})
	set("timeoutMs", func(p map[string]any) {
		p["default"], p["maximum"] = b.DefaultTimeoutMs, b.MaxTimeoutMs
		appendText(p, fmt.Sprintf("Here: default %d, at most %d.", b.DefaultTimeoutMs, b.MaxTimeoutMs))
	})
	set("compatibilityDate", func(p map[string]any) {
		if b.CompatibilityDate != "" {
			appendText(p, "Here the default is "+b.CompatibilityDate+".")
		}
	})
	for _, name := range []string{"env", "secrets"} {
		set(name, func(p map[string]any) {
			appendText(p, fmt.Sprintf("env and secrets together at most %d bytes as JSON.", b.MaxEnvBytes))
		})
	}
	schema := map[string]any{
		"type":                 "object",
		"properties":           props,
		"required":             []string{required},
		"additionalProperties": false,
	}
	return json.Marshal(schema)
}

// appendText adds a sentence to a schema's description.
func appendText(p map[string]any, text string) {
	d, _ := p["description"].(string)
	p["description"] = strings.TrimSpace(strings.TrimSpace(d) + " " + text)
}

// openAPISchema is components.schemas[name] of openapi.yaml, its
// references to other schemas written in.
func openAPISchema(name string) (map[string]any, error) {
	var doc struct {
		Components struct {
			Schemas map[string]any `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(gateway.OpenAPI, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	s, ok := doc.Components.Schemas[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("openapi.yaml has no schema %s", name)
	}
	out, err := inline(s, doc.Components.Schemas, 0)
	if err != nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

// inline writes the schemas that v refers to ($ref
// "#/components/schemas/X") in place of the references; a reference's
// own description wins over the schema's.
func inline(v any, schemas map[string]any, depth int) (any, error) {
	if depth > 16 {
		return nil, fmt.Errorf("openapi.yaml: schema references nest too deep")
	}
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		if ref, ok := v["$ref"].(string); ok {
			target, found := schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
			if !found || !strings.HasPrefix(ref, "#/components/schemas/") {
				return nil, fmt.Errorf("openapi.yaml: unknown reference %s", ref)
			}
			resolved, err := inline(target, schemas, depth+1)
			if err != nil {
				return nil, err
			}
			for k, x := range resolved.(map[string]any) {
				out[k] = x
			}
		}
		for k, x := range v {
			if k == "$ref" {
				continue
			}
			y, err := inline(x, schemas, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			y, err := inline(x, schemas, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	default:
		return v, nil
	}
}

// outputSchema is the execute tool's output schema: toolResult's.
func outputSchema() (*jsonschema.Schema, error) {
	return jsonschema.For[toolResult](nil)
}
