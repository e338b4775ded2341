package egress

import (
	"encoding/json"
	"os"
	"testing"
)

type vectors struct {
	Hosts []struct {
		Host    string `json:"host"`
		Blocked bool   `json:"blocked"`
	} `json:"hosts"`
	Patterns []struct {
		Pattern string `json:"pattern"`
		Valid   bool   `json:"valid"`
	} `json:"patterns"`
	Matches []struct {
		Pattern string `json:"pattern"`
		Host    string `json:"host"`
		Match   bool   `json:"match"`
	} `json:"matches"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	data, err := os.ReadFile("testdata/hosts.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCheckHost(t *testing.T) {
	t.Parallel()
	for _, tt := range loadVectors(t).Hosts {
		err := CheckHost(tt.Host)
		if (err != nil) != tt.Blocked {
			t.Errorf("CheckHost(%q) = %v, want blocked %v", tt.Host, err, tt.Blocked)
		}
	}
}

func TestValidPattern(t *testing.T) {
	t.Parallel()
	for _, tt := range loadVectors(t).Patterns {
		err := ValidPattern(tt.Pattern)
		if (err == nil) != tt.Valid {
			t.Errorf("ValidPattern(%q) = %v, want valid %v", tt.Pattern, err, tt.Valid)
		}
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	for _, tt := range loadVectors(t).Matches {
		if got := Matches(tt.Pattern, tt.Host); got != tt.Match {
			t.Errorf("Matches(%q, %q) = %v, want %v", tt.Pattern, tt.Host, got, tt.Match)
		}
	}
}

// FuzzCheckHost checks that no host makes CheckHost panic, and that a host
// it lets through is never a blocked address in any spelling.
func FuzzCheckHost(f *testing.F) {
	for _, tt := range loadVectors(f).Hosts {
		f.Add(tt.Host)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if CheckHost(host) != nil {
			return
		}
		if addr, ok := parseIPv4(host); ok && endsInNumber(host) {
			for _, p := range blocked {
				if p.Contains(addr) {
					t.Fatalf("CheckHost(%q) = nil, but it means %s in %s", host, addr, p)
				}
			}
		}
	})
}

// FuzzValidPattern checks that a valid pattern never admits a blocked host
// by itself, and that matching never panics.
func FuzzValidPattern(f *testing.F) {
	for _, tt := range loadVectors(f).Patterns {
		f.Add(tt.Pattern, "api.example.com")
	}
	f.Fuzz(func(t *testing.T, pattern, host string) {
		_ = Matches(pattern, host)
		if ValidPattern(pattern) != nil || pattern == "*" {
			return
		}
		name := pattern
		if len(name) > 2 && name[:2] == "*." {
			name = name[2:]
		}
		if CheckHost(name) != nil {
			t.Fatalf("ValidPattern(%q) = nil, but %q is blocked", pattern, name)
		}
	})
}
