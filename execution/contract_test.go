package execution_test

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/worker"
)

// codeConstants returns the value of every constant of type Code declared
// in the package's source, by name.
func codeConstants(t *testing.T) map[string]execution.Code {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]execution.Code{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				for i, name := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("const %s: want a string literal", name.Name)
					}
					codes[name.Name] = execution.Code(constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0)))
				}
			}
		}
	}
	return codes
}

// TestCodesAreTheContracts: execution's Code constants are exactly the
// error codes of worker/src/contract.json, which the shim reads: a code
// added on one side only fails here (the gateway would refuse to start
// with a code in the file that Code.Known does not take).
func TestCodesAreTheContracts(t *testing.T) {
	t.Parallel()
	listed := slices.Concat(worker.Contract.ErrorCodes, worker.Contract.GatewayErrorCodes)
	consts := codeConstants(t)
	if len(consts) == 0 {
		t.Fatal("found no Code constants in the package's source")
	}
	for name, code := range consts {
		if !slices.Contains(listed, code) {
			t.Errorf("%s = %q is not in contract.json's errorCodes or gatewayErrorCodes", name, code)
		}
		if !code.Known() {
			t.Errorf("%s.Known() = false, want true", name)
		}
	}
	values := slices.Collect(maps.Values(consts))
	for _, code := range listed {
		if !slices.Contains(values, code) {
			t.Errorf("contract.json's code %q is not a Code constant", code)
		}
	}
	for _, code := range []execution.Code{"", "success", "Exception", "exception ", "disk_full"} {
		if code.Known() {
			t.Errorf("Code(%s).Known() = true, want false", strconv.Quote(string(code)))
		}
	}
}

// TestStreamsAreTheContracts: the streams contract.json maps the console
// levels to are execution's StreamStdout and StreamStderr, each used.
func TestStreamsAreTheContracts(t *testing.T) {
	t.Parallel()
	used := map[string]bool{}
	for level, stream := range worker.Contract.LevelStreams {
		if stream != execution.StreamStdout && stream != execution.StreamStderr {
			t.Errorf("level %q is on stream %q, not one of execution's", level, stream)
		}
		used[stream] = true
	}
	if !used[execution.StreamStdout] || !used[execution.StreamStderr] {
		t.Errorf("contract.json's levels use the streams %v, want both %s and %s", used, execution.StreamStdout, execution.StreamStderr)
	}
}
