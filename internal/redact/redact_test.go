package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		want   []string // spellings that must be among the variants
	}{
		{"json quote, backslash, newline", "a\"b\\c\nd", []string{
			`a\"b\\c\nd`,      // JSON.stringify
			`a"b\\c\nd`,       // inspect in single quotes
			`a\"b\\c\nd`,      // inspect in double quotes
			`a\\\"b\\\\c\\nd`, // inspect of the JSON spelling, single quotes
			"a%22b%5Cc%0Ad",   // encodeURIComponent
			`a"b\cd`,          // what the URL parser keeps of it (no newline)
			"a%22b/cd",        // in an http path, where a backslash reads as a slash
			"a%22b\\cd",       // the query set of the parsed form
		}},
		{"single quote", "it's", []string{`it\'s`, "it's", "it%27s"}},
		{"controls and DEL", "x\x01\x7f\ty", []string{`x\u0001` + "\x7f" + `\ty`, `x\x01\x7F\ty`, "x%01%7F%09y", "x%01%7Fy"}},
		{"url delimiters", "p@ss word&x=1?y#z", []string{
			"p@ss%20word&x=1?y%23z",         // query set
			"p%40ss+word%26x%3D1%3Fy%23z",   // URLSearchParams
			"p%40ss%20word%26x%3D1%3Fy%23z", // encodeURIComponent
			"p%40ss+word%26x%3D1%3Fy%23z",   // url.QueryEscape
			"p@ss%20word&x=1%3Fy%23z",       // url.PathEscape
			"p%40ss%20word&x%3D1%3Fy%23z",   // userinfo set
		}},
		{"non-ASCII", "clé🔑", []string{"clé🔑", "cl%C3%A9%F0%9F%94%91"}},
		{"mixed case", "AbCdEf", []string{"AbCdEf", "abcdef"}},
		{"surrounding whitespace", " \tk e y\n", []string{"k e y", "k+e+y", "k%20e%20y", ` \tk e y\n`}},
		{"backtick and dollar", "a`b${c}'\"", []string{"a`b${c}\\'\"", "a`b${c}'\\\"", "a\\`b${c}'\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Variants(tt.secret)
			if len(got) == 0 || got[0] != tt.secret {
				t.Fatalf("Variants(%q) = %q, want the raw value first", tt.secret, got)
			}
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("Variants(%q) = %q, want it to contain %q", tt.secret, got, w)
				}
			}
			for i, v := range got {
				if v == "" || slices.Contains(got[:i], v) {
					t.Errorf("Variants(%q)[%d] = %q: empty or repeated", tt.secret, i, v)
				}
			}
		})
	}
}

func TestVariantsOfPlainAndEmpty(t *testing.T) {
	t.Parallel()
	if got := Variants(""); got != nil {
		t.Errorf("Variants(\"\") = %q, want none", got)
	}
	for _, s := range []string{"plain123", "tok_9f8e7d6c5b4a", "a-b.c_d"} {
		if got := Variants(s); !slices.Equal(got, []string{s}) {
			t.Errorf("Variants(%q) = %q, want only the raw value", s, got)
		}
	}
}

// TestJSONEscapeMatchesEncoder checks jsonEscape against encoding/json with
// HTML escaping off, which spells strings as JSON.stringify does (short
// escapes, lowercase \u00xx, DEL and "/" raw), on generated strings.
func TestJSONEscapeMatchesEncoder(t *testing.T) {
	t.Parallel()
	alphabet := []rune("ab/\\\"'`\x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f é日🔑<>&")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		r := make([]rune, rng.IntN(12))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(r)
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(b.String(), "\n")
		want = want[1 : len(want)-1]
		if got := jsonEscape(s); got != want {
			t.Fatalf("jsonEscape(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	pem := "-----BEGIN KEY-----\nMIIB+x/y\n-----END KEY-----"
	m := New([]string{"sk_live_abc", "sk_live_abc_longer", pem, "", "Mixed"})
	tests := []struct{ in, want string }{
		{"a sk_live_abc_longer b sk_live_abc", "a [REDACTED] b [REDACTED]"},
		{`{"K":"-----BEGIN KEY-----\nMIIB+x/y\n-----END KEY-----"}`, `{"K":"[REDACTED]"}`},
		{"{ k: '-----BEGIN KEY-----\\nMIIB+x/y\\n-----END KEY-----' }", "{ k: '[REDACTED]' }"},
		{"https://mixed.example/?q=-----BEGIN%20KEY-----MIIB+x/y-----END%20KEY-----", "https://[REDACTED].example/?q=[REDACTED]"},
		{"x-mixed: MIXED", "x-[REDACTED]: MIXED"},
		{"nothing here", "nothing here"},
	}
	for _, tt := range tests {
		if got := m.Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNilMasker(t *testing.T) {
	t.Parallel()
	for _, secrets := range [][]string{nil, {}, {""}} {
		m := New(secrets)
		if m != nil {
			t.Errorf("New(%q) = %v, want nil", secrets, m)
		}
		if got := m.Mask("text"); got != "text" {
			t.Errorf("nil Mask(%q) = %q, want it unchanged", "text", got)
		}
	}
}

// TestMaskEverySpelling generates secrets from hostile characters and
// checks that each of their spellings, inside other text, is masked.
func TestMaskEverySpelling(t *testing.T) {
	t.Parallel()
	alphabet := []rune("aZ09 \"'`\\\n\t\r\x01\x7f/?#&=%+@:;[]^|{}<>$,!()~é日🔑")
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		r := make([]rune, 6+rng.IntN(10))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		secret := string(r)
		m := New([]string{secret})
		for _, v := range Variants(secret) {
			got := m.Mask("«" + v + "»")
			if strings.Contains(got, v) || !strings.Contains(got, Text) {
				t.Fatalf("Mask of %q's spelling %q = %q, want it masked", secret, v, got)
			}
		}
	}
}

// TestPunycode checks the encoder against RFC 3492's sample strings and a
// host workerd wrote; hostForm against Node's URL parser.
func TestPunycode(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"bücher", "bcher-kva"},
		{"münchen", "mnchen-3ya"},
		{"他们为什么不说中文", "ihqwcrb4cv8a8dqg056pqjye"},
		{"3年b組金八先生", "3b-ww4c5e180e575a65lsy2b"},
		{"そのスピードで", "d9juau41awczczp"},
		{"ليهمابتكلموشعربي؟", "egbpdaj6bu4bxfgehfvwxn"},
		{"clé-secrète-ключ-🔑-日本語", "cl-secrte----3dbi858jqa8rve4986s4lfot1tfn82e"},
	}
	for _, tt := range tests {
		if got := punycode(tt.in); got != tt.want {
			t.Errorf("punycode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := hostForm("Clé.Example"), "xn--cl-cja.example"; got != want {
		t.Errorf("hostForm(%q) = %q, want %q", "Clé.Example", got, want)
	}
}

// TestPlainShortcut checks that the shortcut for plain secrets gives what
// the full generation gives.
func TestPlainShortcut(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"tok_9f8e7d6c5b4a", "AbC-d.E_f", "a", "Z.9", "x-y-z_0"} {
		if !plain(s) {
			t.Fatalf("plain(%q) = false", s)
		}
		var full []string
		for _, f := range spellings(s) {
			if !slices.Contains(full, f) {
				full = append(full, f)
			}
		}
		if got := Variants(s); !slices.Equal(got, full) {
			t.Errorf("Variants(%q) = %q, want %q as the full generation gives", s, got, full)
		}
	}
}

// BenchmarkNew measures building a masker, which happens once per
// execution with secrets.
// Run: go test -run '^$' -bench . ./internal/redact
func BenchmarkNew(b *testing.B) {
	for _, secrets := range [][]string{
		{"tok_abcdef0123456789"},
		{"-----BEGIN KEY-----\nMIIB+x/y\n-----END KEY-----", `{"k":"a\\b"}`, "p@ss word&x=1?y#z"},
	} {
		b.Run(fmt.Sprint(len(secrets)), func(b *testing.B) {
			for b.Loop() {
				New(secrets).Mask("x")
			}
		})
	}
}
