// Package transpiletest generates deeply nested TypeScript, the family of
// inputs that drives a recursive-descent compiler into deep recursion. The
// tests of the transpiler, of the API and the fuzz target share it.
package transpiletest

import (
	"strconv"
	"strings"
	"testing"
)

// Family is one way to nest: Module returns a module nested depth levels
// deep, and Name is the module's file name (a .ts module unless the family
// nests another loader's syntax).
type Family struct {
	Name   string
	File   string
	Module func(depth int) string
}

// expr wraps an expression in a module that uses it.
func expr(e string) string {
	return "const a: any = 1;\nexport default { fetch(): Response { return new Response(String(" + e + ")); } };\n"
}

// stmts wraps statements in a module's top level.
func stmts(s string) string {
	return "let a: any = 1, b: any = 1;\n" + s + "\nexport default { fetch(): Response { return new Response(\"ok\"); } };\n"
}

func rep(s string, n int) string { return strings.Repeat(s, n) }

// Families lists the nesting shapes: prefix operators, brackets of every
// kind, right-associative chains, nested statements and declarations, type
// syntax that TypeScript strips, left-deep chains and nested JSON.
var Families = []Family{
	{"not", "main.ts", func(d int) string { return expr(rep("!", d) + "1") }},
	{"minus plus", "main.ts", func(d int) string { return expr(rep("-+", d/2+1) + "1") }},
	{"typeof", "main.ts", func(d int) string { return expr(rep("typeof ", d) + "1") }},
	{"void", "main.ts", func(d int) string { return expr(rep("void ", d) + "1") }},
	{"await", "main.ts", func(d int) string { return stmts("async function f() { return " + rep("await ", d) + "1; }") }},
	{"new", "main.ts", func(d int) string { return stmts("const x = () => " + rep("new ", d) + "Object;") }},
	{"spread", "main.ts", func(d int) string { return expr(rep("[...", d) + "[]" + rep("]", d)) }},
	{"parens", "main.ts", func(d int) string { return expr(rep("(", d) + "1" + rep(")", d)) }},
	{"brackets", "main.ts", func(d int) string { return expr(rep("[", d) + rep("]", d)) }},
	{"objects", "main.ts", func(d int) string { return expr(rep("{a:", d) + "1" + rep("}", d)) }},
	{"templates", "main.ts", func(d int) string { return expr(rep("`${", d) + "1" + rep("}`", d)) }},
	{"calls", "main.ts", func(d int) string { return expr(rep("String(", d) + "1" + rep(")", d)) }},
	{"assignments", "main.ts", func(d int) string { return stmts(rep("a=", d) + "1;") }},
	{"exponents", "main.ts", func(d int) string { return expr(rep("1**", d) + "1") }},
	{"ternaries", "main.ts", func(d int) string { return expr(rep("a?1:", d) + "1") }},
	{"nested ternaries", "main.ts", func(d int) string { return expr(rep("a?", d) + "1" + rep(":1", d)) }},
	{"arrows", "main.ts", func(d int) string { return stmts("const f = " + rep("x=>", d) + "1;") }},
	{"else if", "main.ts", func(d int) string { return stmts(rep("if(a){}else ", d) + "{}") }},
	{"ifs", "main.ts", func(d int) string { return stmts(rep("if(a)", d) + ";") }},
	{"blocks", "main.ts", func(d int) string { return stmts(rep("{", d) + rep("}", d)) }},
	{"labels", "main.ts", func(d int) string { return stmts(labels(d) + ";") }},
	{"functions", "main.ts", func(d int) string { return stmts(rep("function f(){", d) + rep("}", d)) }},
	{"members", "main.ts", func(d int) string { return expr("a" + rep(".b", d)) }},
	{"call chain", "main.ts", func(d int) string { return stmts("const g = () => a" + rep("()", d) + ";") }},
	{"sums", "main.ts", func(d int) string { return expr(rep("1+", d) + "1") }},
	{"non-null", "main.ts", func(d int) string { return expr("a" + rep("!", d)) }},
	{"as casts", "main.ts", func(d int) string { return expr("a" + rep(" as any", d)) }},
	{"type parens", "main.ts", func(d int) string { return stmts("let t: " + rep("(", d) + "number" + rep(")", d) + " = 1;") }},
	{"type generics", "main.ts", func(d int) string { return stmts("let t: " + rep("Array<", d) + "number" + rep(">", d) + " = [];") }},
	{"type objects", "main.ts", func(d int) string { return stmts("let t: " + rep("{a:", d) + "1" + rep("}", d) + " = a;") }},
	{"type unions", "main.ts", func(d int) string { return stmts("let t: " + rep("1|", d) + "2 = 1;") }},
	{"namespaces", "main.ts", func(d int) string { return stmts("namespace N" + rep(".M", d) + " { export const x = 1; }") }},
	{"patterns", "main.ts", func(d int) string { return stmts("const " + rep("[", d) + "p" + rep("]", d) + " = a;") }},
	{"json", "data.json", func(d int) string { return rep("[", d) + rep("]", d) }},
}

// labels returns depth distinct nested labels: "l0:l1:...".
func labels(depth int) string {
	var b strings.Builder
	for i := range depth {
		b.WriteString("l" + strconv.Itoa(i) + ":")
	}
	return b.String()
}

// Modules returns the execution's modules for a family nested depth deep:
// main.ts alone, or main.ts importing the nested module.
func (f Family) Modules(depth int) map[string]string {
	if f.File == "main.ts" {
		return map[string]string{"main.ts": f.Module(depth)}
	}
	return map[string]string{
		f.File:    f.Module(depth),
		"main.ts": "import d from \"./" + f.File + "\";\n" + expr("d"),
	}
}

// Named returns the family called name, failing the test if there is none.
func Named(tb testing.TB, name string) Family {
	tb.Helper()
	for _, f := range Families {
		if f.Name == name {
			return f
		}
	}
	tb.Fatalf("no nesting family %q", name)
	return Family{}
}
