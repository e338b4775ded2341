package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestGenerateAndLookup(t *testing.T) {
	t.Parallel()
	key, hash, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, KeyPrefix) || len(key) < 40 || strings.Contains(hash, key) {
		t.Fatalf("Generate() = %q, %q", key, hash)
	}
	sum, err := ParseHash(hash)
	if err != nil {
		t.Fatal(err)
	}
	other, otherHash, _ := Generate()
	otherSum, _ := ParseHash(otherHash)
	ring := NewKeyring([]Key{{Name: "ci", Hash: sum}, {Name: "old", Hash: otherSum, Revoked: true}})
	if k, err := ring.Lookup(key); err != nil || k.Name != "ci" {
		t.Errorf("Lookup(key) = %v, %v; want ci", k, err)
	}
	if _, err := ring.Lookup(other); !errors.Is(err, ErrRevoked) {
		t.Errorf("Lookup(revoked) = %v, want ErrRevoked", err)
	}
	for _, bad := range []string{"", "dwk_", key + "x", strings.ToUpper(key)} {
		if _, err := ring.Lookup(bad); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Lookup(%q) = %v, want ErrUnknownKey", bad, err)
		}
	}
}

func TestParseHash(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "abc", "sha256:xyz", "md5:" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("0", 63)} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) succeeded", bad)
		}
	}
	if _, err := ParseHash(HashKey("k")); err != nil {
		t.Errorf("ParseHash(HashKey) = %v", err)
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{"ci": true, "team-a.prod_1": true, "": false, "Alice": false, "a b": false, strings.Repeat("a", 65): false} {
		if err := ValidName(name); (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}
