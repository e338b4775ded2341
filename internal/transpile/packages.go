package transpile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/evanw/esbuild/pkg/api"
)

// Packages is a bundle of npm packages for the Worker runtime: one ES
// module per entry (the bare specifier a guest imports, such as "hono" or
// "hono/cors"), named exactly as the specifier so that a guest module at
// the root finds it, the chunks the entries share under ChunkDir (shared
// code is one module, so state and classes are shared too), and the .wasm
// files the packages import, as WebAssembly modules under ChunkDir.
type Packages struct {
	Modules map[string]string `json:"modules"`
	Wasm    map[string][]byte `json:"wasm"`
	// Defaults lists the entries with a default export (a re-export of
	// an entry from another directory names it).
	Defaults []string `json:"defaults"`
	// Dropped are entries that name nothing in the packages: a string in
	// the guest's code that looked like a subpath but is not one.
	Dropped []string `json:"dropped,omitempty"`
	Error   *Error   `json:"error,omitempty"`
}

// ChunkDir holds a package bundle's shared chunks and wasm files: no guest
// module can be named under it (a path part may not start with a dot).
const ChunkDir = "node_modules/.dw"

// packagesTimeout bounds one package bundle, in its child process: a large
// library (date-fns's index) bundles in about a second.
const packagesTimeout = 60 * time.Second

// wasmToken starts the placeholder esbuild writes for a .wasm import; once
// the bundle is built each becomes the path from its module to the wasm
// module, which esbuild cannot compute for an external import.
const wasmToken = "dw-wasm:"

// BundlePackages bundles the entries, bare specifiers, from the packages
// installed in dir/node_modules, for workerd: conditions workerd, worker,
// browser; ES modules; node:* and cloudflare:* left as imports. It always
// runs in a child process: package code is as untrusted as a guest's, and
// a compiler driven too deep by it must not take the gateway down. A
// package that does not bundle is an *Error.
func BundlePackages(ctx context.Context, dir string, entries []string) (*Packages, error) {
	if !childServed.Load() {
		return nil, errNoChild
	}
	select {
	case childSlots <- struct{}{}:
		defer func() { <-childSlots }()
	case <-ctx.Done():
		return nil, ErrBusy
	}
	ctx, cancel := context.WithTimeout(ctx, packagesTimeout)
	defer cancel()
	req, err := json.Marshal(childRequest{Packages: &packagesRequest{Dir: dir, Entries: entries}})
	if err != nil {
		return nil, err
	}
	out := &cappedBuffer{max: childMaxOutput}
	cmd := exec.CommandContext(ctx, selfPath())
	cmd.Env = []string{childEnv + "=1", "GOTRACEBACK=none"}
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(string(req))
	cmd.Stdout = out
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, &Error{Message: "the packages could not be bundled within " + packagesTimeout.String()}
	case errors.As(err, &exit):
		return nil, &Error{Message: "the packages could not be bundled: nesting too deep or code too large for the compiler"}
	case err != nil:
		return nil, fmt.Errorf("run the compiler process: %w", err)
	}
	var p Packages
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		return nil, fmt.Errorf("read the compiler process's answer: %w", err)
	}
	if p.Error != nil {
		return nil, p.Error
	}
	return &p, nil
}

// packagesRequest asks the child for a package bundle.
type packagesRequest struct {
	Dir     string   `json:"dir"`
	Entries []string `json:"entries"`
}

// buildPackages bundles entries from dir, dropping entries that resolve to
// nothing and trying again without them.
func buildPackages(dir string, entries []string) *Packages {
	var dropped []string
	for len(entries) > 0 {
		p, unresolved := buildPackagesOnce(dir, entries)
		if len(unresolved) == 0 {
			p.Dropped = dropped
			return p
		}
		var keep []string
		for _, e := range entries {
			if unresolved[e] {
				dropped = append(dropped, e)
			} else {
				keep = append(keep, e)
			}
		}
		entries = keep
	}
	return &Packages{Modules: map[string]string{}, Wasm: map[string][]byte{}, Dropped: dropped}
}

// buildPackagesOnce runs esbuild once; unresolved names the entries it
// could not resolve (then the bundle is not made).
func buildPackagesOnce(dir string, entries []string) (*Packages, map[string]bool) {
	out := filepath.Join(dir, "out")
	points := make([]api.EntryPoint, len(entries))
	for i, e := range entries {
		points[i] = api.EntryPoint{InputPath: e, OutputPath: e}
	}
	wasm := &wasmFiles{files: map[string][]byte{}}
	result := api.Build(api.BuildOptions{
		EntryPointsAdvanced: points,
		AbsWorkingDir:       dir,
		Outdir:              out,
		ChunkNames:          ChunkDir + "/[name]-[hash]",
		Bundle:              true,
		Splitting:           true,
		Write:               false,
		Metafile:            true,
		Format:              api.FormatESModule,
		Platform:            api.PlatformNeutral,
		Target:              api.ESNext,
		Conditions:          []string{"workerd", "worker", "browser"},
		MainFields:          []string{"browser", "module", "main"},
		External:            []string{"node:*", "cloudflare:*"},
		Define:              map[string]string{"process.env.NODE_ENV": `"production"`},
		LogLevel:            api.LogLevelSilent,
		Charset:             api.CharsetUTF8,
		Plugins:             []api.Plugin{confinePlugin(dir), wasmPlugin(dir, wasm)},
	})
	if len(result.Errors) > 0 {
		unresolved := map[string]bool{}
		for _, m := range result.Errors {
			for _, e := range entries {
				if m.Location == nil && strings.Contains(m.Text, `"`+e+`"`) && strings.HasPrefix(m.Text, "Could not resolve") {
					unresolved[e] = true
				}
			}
		}
		if len(unresolved) > 0 {
			return nil, unresolved
		}
		return &Packages{Error: packageError(result.Errors[0])}, nil
	}
	p := &Packages{Modules: map[string]string{}, Wasm: wasm.files}
	var meta struct {
		Outputs map[string]struct {
			EntryPoint string   `json:"entryPoint"`
			Exports    []string `json:"exports"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(result.Metafile), &meta); err != nil {
		return &Packages{Error: &Error{Message: "read esbuild's metafile: " + err.Error()}}, nil
	}
	entryOf := map[string]bool{}
	for _, e := range entries {
		entryOf[e] = true
	}
	for _, f := range result.OutputFiles {
		rel, err := filepath.Rel(out, f.Path)
		if err != nil {
			continue
		}
		name := filepath.ToSlash(rel)
		if e := strings.TrimSuffix(name, ".js"); entryOf[e] {
			name = e // the entry is named as the guest imports it
			for _, x := range meta.Outputs[filepath.ToSlash(filepath.Join("out", rel))].Exports {
				if x == "default" {
					p.Defaults = append(p.Defaults, e)
				}
			}
		}
		p.Modules[name] = linkWasm(string(f.Contents), name)
	}
	sort.Strings(p.Defaults)
	return p, nil
}

// linkWasm replaces each wasm placeholder in module's code with the path
// from module to the wasm module.
func linkWasm(code, module string) string {
	for {
		i := strings.Index(code, `"`+wasmToken)
		if i < 0 {
			return code
		}
		end := strings.IndexByte(code[i+1:], '"')
		if end < 0 {
			return code
		}
		target := code[i+1+len(wasmToken) : i+1+end]
		code = code[:i] + `"` + Relative(module, target) + `"` + code[i+1+end+1:]
	}
}

// Relative is the import specifier by which module from reaches module to,
// both named from the root of a module set ("hono/cors" reaches
// "node_modules/.dw/chunk.js" as "../node_modules/.dw/chunk.js").
func Relative(from, to string) string {
	rel, err := filepath.Rel(path.Dir("/"+from), "/"+to)
	if err != nil {
		return to
	}
	rel = filepath.ToSlash(rel)
	if !strings.HasPrefix(rel, "../") {
		rel = "./" + rel
	}
	return rel
}

// packageError is esbuild's error in the terms of the package at fault.
func packageError(m api.Message) *Error {
	e := &Error{Message: m.Text}
	if m.Location != nil {
		e.File = m.Location.File
		e.Line = m.Location.Line
		e.Column = m.Location.Column + 1
	}
	return e
}

// confinePlugin refuses to load any file outside dir: a package.json's
// main or browser field may name any path, and package code must not read
// the gateway's files into a bundle (or an error message).
func confinePlugin(dir string) api.Plugin {
	root := filepath.Clean(dir) + string(filepath.Separator)
	return api.Plugin{Name: "confine", Setup: func(b api.PluginBuild) {
		b.OnLoad(api.OnLoadOptions{Filter: ".*", Namespace: "file"}, func(args api.OnLoadArgs) (api.OnLoadResult, error) {
			if !strings.HasPrefix(filepath.Clean(args.Path), root) {
				return api.OnLoadResult{}, errors.New("a package refers to a file outside its packages")
			}
			return api.OnLoadResult{}, nil // esbuild loads it as usual
		})
	}}
}

// wasmFiles are the wasm modules of a bundle, by name; esbuild calls
// plugins from several goroutines.
type wasmFiles struct {
	mu    sync.Mutex
	files map[string][]byte
}

// wasmPlugin turns each import of a .wasm file of the packages into an
// import of a wasm module kept in wasm, named by its content.
func wasmPlugin(dir string, wasm *wasmFiles) api.Plugin {
	root := filepath.Clean(dir) + string(filepath.Separator)
	return api.Plugin{Name: "wasm", Setup: func(b api.PluginBuild) {
		b.OnResolve(api.OnResolveOptions{Filter: `\.wasm(\?module)?$`}, func(args api.OnResolveArgs) (api.OnResolveResult, error) {
			if args.PluginData == "wasm" {
				return api.OnResolveResult{}, nil
			}
			spec := strings.TrimSuffix(args.Path, "?module")
			file := filepath.Join(args.ResolveDir, spec)
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				r := b.Resolve(spec, api.ResolveOptions{Kind: args.Kind, ResolveDir: args.ResolveDir, Importer: args.Importer, PluginData: "wasm"})
				if len(r.Errors) > 0 {
					return api.OnResolveResult{}, errors.New(r.Errors[0].Text)
				}
				file = r.Path
			}
			if !strings.HasPrefix(filepath.Clean(file), root) {
				return api.OnResolveResult{}, errors.New("a package refers to a file outside its packages")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return api.OnResolveResult{}, fmt.Errorf("read %s: %w", spec, err)
			}
			sum := sha256.Sum256(data)
			base := strings.TrimSuffix(filepath.Base(file), ".wasm")
			name := ChunkDir + "/" + base + "-" + hex.EncodeToString(sum[:6]) + ".wasm"
			wasm.mu.Lock()
			wasm.files[name] = data
			wasm.mu.Unlock()
			return api.OnResolveResult{Path: wasmToken + name, External: true}, nil
		})
	}}
}
