// Package transpile turns TypeScript executions into JavaScript the runtime
// can load, with esbuild's Go API. The module graph reachable from the main
// module is bundled into one ES module (types stripped; enums, satisfies and
// decorators compiled as esbuild does), and its source map is kept so error
// stacks and logs can name the user's TypeScript lines.
package transpile

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// IsTypeScript reports whether a module name is a TypeScript module.
func IsTypeScript(name string) bool {
	return strings.HasSuffix(name, ".ts") || strings.HasSuffix(name, ".mts")
}

// Output is a transpiled execution: one module and its source map.
type Output struct {
	Module string // the bundled module's name
	Code   string
	smap   *sourceMap
	frame  *regexp.Regexp
}

// Error is a transpile failure, a syntax error in the user's code. File is
// empty when the compiler failed on the source as a whole (see ErrTooDeep).
type Error struct {
	File    string
	Line    int // 1-based
	Column  int // 1-based
	Message string
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Message
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Message)
}

const namespace = "dw"

// Bundle transpiles the modules reachable from main into one ES module.
// Imports of "cloudflare:", "node:" and other non-relative modules stay
// imports. A relative import may name a module exactly, without its
// extension, or with .js for a .ts module, as TypeScript allows.
//
// Small sources compile in this process; larger ones in a child process
// (see MaybeServeChild), where a compiler driven too deep cannot take the
// caller down. A source the child cannot compile is an *Error too.
func Bundle(modules map[string]string, main string) (*Output, error) {
	return BundleWith(modules, main, nil)
}

// BundleWith is Bundle for modules beside binary modules (binary names
// them: WebAssembly or data, which the runtime loads as they are). A
// relative import naming one of them exactly, extension and all, stays an
// import of it, rewritten to reach it from where the bundle is; the bundle
// is named so as not to take a binary module's name.
func BundleWith(modules map[string]string, main string, binary []string) (*Output, error) {
	var b *built
	var err error
	if fitsInProcess(modules) {
		b = build(modules, main, binary)
	} else {
		b, err = buildInChild(modules, main, binary)
	}
	if err != nil {
		return nil, err
	}
	return b.output()
}

// built is what one esbuild run produced: the bundle and its source map, or
// the first error. It is also the child process's answer.
type built struct {
	Module string `json:"module"`
	Code   string `json:"code"`
	Map    []byte `json:"map"`
	Error  *Error `json:"error,omitempty"`
}

// bundleName names the bundle of main: main with a .js ending, or, if a
// module already has that name, main.bundle.js, main.bundle-2.js and so on
// (never a reserved __dw_ name: the shim refuses those).
func bundleName(modules map[string]string, main string, binary []string) string {
	stem := strings.TrimSuffix(strings.TrimSuffix(main, path.Ext(main)), ".")
	out := stem + ".js"
	for i := 1; ; i++ {
		if _, clash := modules[out]; !clash && !slices.Contains(binary, out) {
			return out
		}
		if i == 1 {
			out = stem + ".bundle.js"
		} else {
			out = fmt.Sprintf("%s.bundle-%d.js", stem, i)
		}
	}
}

// build runs esbuild in this process.
func build(modules map[string]string, main string, binary []string) *built {
	out := bundleName(modules, main, binary)
	result := api.Build(api.BuildOptions{
		EntryPoints:    []string{main},
		Bundle:         true,
		Write:          false,
		Outfile:        out,
		Format:         api.FormatESModule,
		Platform:       api.PlatformNeutral,
		Target:         api.ES2022,
		Sourcemap:      api.SourceMapExternal,
		SourcesContent: api.SourcesContentExclude,
		LogLevel:       api.LogLevelSilent,
		Charset:        api.CharsetUTF8,
		Plugins:        []api.Plugin{modulesPlugin(modules, binary)},
	})
	if len(result.Errors) > 0 {
		return &built{Error: toError(result.Errors[0], main)}
	}
	b := &built{Module: out}
	for _, f := range result.OutputFiles {
		switch {
		case strings.HasSuffix(f.Path, ".map"):
			b.Map = f.Contents
		default:
			b.Code = linkBinary(stripSourceMapComment(string(f.Contents)), out, binary)
		}
	}
	return b
}

// linkBinary replaces each placeholder import of a binary module in the
// bundle's code with the path from the bundle to it (esbuild leaves an
// external import's path as the plugin gave it).
func linkBinary(code, bundle string, binary []string) string {
	for _, name := range binary {
		code = strings.ReplaceAll(code, `"`+wasmToken+name+`"`, strconv.Quote(Relative(bundle, name)))
	}
	return code
}

// output checks what esbuild built and readies its source map.
func (b *built) output() (*Output, error) {
	if b.Error != nil {
		return nil, b.Error
	}
	if b.Map == nil { // empty code is an empty module: TypeScript with only types, say
		return nil, errors.New("esbuild produced no output")
	}
	sm, err := parseSourceMap(b.Map)
	if err != nil {
		return nil, fmt.Errorf("read esbuild's source map: %w", err)
	}
	o := &Output{Module: b.Module, Code: b.Code, smap: sm}
	o.frame = regexp.MustCompile(`(^|[\s(/])` + regexp.QuoteMeta(b.Module) + `:(\d+):(\d+)`)
	return o, nil
}

func toError(m api.Message, main string) *Error {
	e := &Error{File: main, Line: 1, Column: 1, Message: m.Text}
	if m.Location != nil {
		e.File = strings.TrimPrefix(m.Location.File, namespace+":")
		e.Line = m.Location.Line
		e.Column = m.Location.Column + 1
	}
	return e
}

func stripSourceMapComment(code string) string {
	if i := strings.LastIndex(code, "\n//# sourceMappingURL="); i >= 0 {
		return code[:i+1]
	}
	return code
}

var loaders = map[string]api.Loader{
	".ts": api.LoaderTS, ".mts": api.LoaderTS, ".js": api.LoaderJS, ".mjs": api.LoaderJS,
	".json": api.LoaderJSON, ".txt": api.LoaderText,
}

// modulesPlugin serves the execution's modules to esbuild as a virtual
// file system; nothing is read from disk. An import of a binary module
// (named exactly) stays external, as a placeholder linkBinary rewrites.
func modulesPlugin(modules map[string]string, binary []string) api.Plugin {
	return api.Plugin{
		Name: "modules",
		Setup: func(b api.PluginBuild) {
			b.OnResolve(api.OnResolveOptions{Filter: ".*"}, func(args api.OnResolveArgs) (api.OnResolveResult, error) {
				if args.Kind == api.ResolveEntryPoint {
					return api.OnResolveResult{Path: args.Path, Namespace: namespace}, nil
				}
				if !strings.HasPrefix(args.Path, "./") && !strings.HasPrefix(args.Path, "../") {
					return api.OnResolveResult{Path: args.Path, External: true}, nil
				}
				want := path.Join(path.Dir(args.Importer), args.Path)
				if slices.Contains(binary, want) {
					return api.OnResolveResult{Path: wasmToken + want, External: true}, nil
				}
				for _, candidate := range candidates(want) {
					if _, ok := modules[candidate]; ok {
						return api.OnResolveResult{Path: candidate, Namespace: namespace}, nil
					}
				}
				return api.OnResolveResult{}, fmt.Errorf("no module %q (imported as %q)", want, args.Path)
			})
			b.OnLoad(api.OnLoadOptions{Filter: ".*", Namespace: namespace}, func(args api.OnLoadArgs) (api.OnLoadResult, error) {
				src, ok := modules[args.Path]
				if !ok {
					return api.OnLoadResult{}, fmt.Errorf("no module %q", args.Path)
				}
				loader, ok := loaders[path.Ext(args.Path)]
				if !ok {
					loader = api.LoaderJS
				}
				return api.OnLoadResult{Contents: &src, Loader: loader}, nil
			})
		},
	}
}

// candidates lists the module names an import of name may mean.
func candidates(name string) []string {
	out := []string{name, name + ".ts", name + ".mts", name + ".js", name + ".mjs", name + "/index.ts", name + "/index.js"}
	if base, ok := strings.CutSuffix(name, ".js"); ok {
		out = append(out, base+".ts")
	}
	if base, ok := strings.CutSuffix(name, ".mjs"); ok {
		out = append(out, base+".mts")
	}
	return out
}

// MapStack rewrites positions in the bundled module ("plugin.js:12:5") in
// text to the user's source positions ("plugin.ts:3:7").
func (o *Output) MapStack(text string) string {
	if o == nil || !strings.Contains(text, o.Module+":") {
		return text
	}
	return o.frame.ReplaceAllStringFunc(text, func(m string) string {
		sub := o.frame.FindStringSubmatch(m)
		line, _ := strconv.Atoi(sub[2])
		col, _ := strconv.Atoi(sub[3])
		src, sline, scol, ok := o.smap.lookup(line, col)
		if !ok {
			return m
		}
		return sub[1] + fmt.Sprintf("%s:%d:%d", strings.TrimPrefix(src, namespace+":"), sline, scol)
	})
}
