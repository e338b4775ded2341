// Package auth holds the gateway's API keys. Only a hash of each key is
// configured; a presented key is hashed and compared in constant time with
// every configured hash.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Key is one configured API key.
type Key struct {
	Name        string
	Hash        [sha256.Size]byte
	Revoked     bool
	Requests    int // per-key request quota per window; 0: the default
	Concurrency int // per-key concurrent executions; 0: the default
	MaxQueued   int // per-key queued executions; 0: the default
	// MaxStoredBytes bounds the bytes of the key's records; 0: the default.
	MaxStoredBytes int64
	// Scope is what the key may do: ScopeExecute (also "") or
	// ScopeMetrics.
	Scope string
}

// Scopes of a key.
const (
	// ScopeExecute may do everything a key does: run code, read its own
	// executions, list capabilities, use MCP, and read GET /metrics.
	ScopeExecute = "execute"
	// ScopeMetrics may only read GET /metrics: a scraper's key, which
	// runs no code and reads no execution.
	ScopeMetrics = "metrics"
)

// ValidScope reports whether s names a scope ("" is ScopeExecute).
func ValidScope(s string) bool { return s == "" || s == ScopeExecute || s == ScopeMetrics }

// Executes reports whether k may run code and read executions.
func (k *Key) Executes() bool { return k.Scope == "" || k.Scope == ScopeExecute }

// Keyring is the set of configured keys.
type Keyring struct {
	keys []Key
}

// Errors of Lookup. Callers say neither to clients: both are a 401.
var (
	ErrUnknownKey = errors.New("unknown API key")
	ErrRevoked    = errors.New("revoked API key")
)

// NewKeyring returns a keyring of keys.
func NewKeyring(keys []Key) *Keyring {
	return &Keyring{keys: keys}
}

// Len returns how many keys are configured.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// Active reports whether a key named name is configured and not revoked.
func (k *Keyring) Active(name string) bool {
	for i := range k.Len() {
		if k.keys[i].Name == name {
			return !k.keys[i].Revoked
		}
	}
	return false
}

// Lookup returns the key whose hash matches presented. It compares with
// every key, in constant time, whatever matches.
func (k *Keyring) Lookup(presented string) (*Key, error) {
	sum := sha256.Sum256([]byte(presented))
	var found *Key
	for i := range k.keys {
		if subtle.ConstantTimeCompare(sum[:], k.keys[i].Hash[:]) == 1 {
			found = &k.keys[i]
		}
	}
	switch {
	case found == nil:
		return nil, ErrUnknownKey
	case found.Revoked:
		return found, ErrRevoked
	}
	return found, nil
}

// KeyPrefix starts every key Generate makes, so leaked keys are easy to find.
const KeyPrefix = "dwk_"

// Generate makes a new random API key and the hash to configure for it.
func Generate() (key, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashKey(key), nil
}

// HashKey returns the configured form of a key's hash: "sha256:" and hex.
// Keys are 256 random bits, so a fast hash is enough.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ValidName reports whether name can name a key: lower case letters,
// digits, '.', '_' and '-', up to 64 characters.
func ValidName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("key name %q must be 1 to 64 lower case letters, digits, dots, underscores or hyphens", name)
	}
	return nil
}

// ParseHash reads a hash written by HashKey.
func ParseHash(s string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return out, fmt.Errorf("hash %q must start with \"sha256:\"", s)
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil || len(b) != sha256.Size {
		return out, fmt.Errorf("hash %q must be sha256: and 64 hex digits", s)
	}
	copy(out[:], b)
	return out, nil
}

// All returns a copy of the keys.
func (k *Keyring) All() []Key {
	if k == nil {
		return nil
	}
	return append([]Key(nil), k.keys...)
}
