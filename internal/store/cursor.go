package store

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// A list cursor is the position of the last record of a page: its seq,
// which numbers the records of every caller together. Sent in the clear, the
// gaps between a caller's own seqs would show how much other callers ran,
// and when. So the cursor is one AES block, sealed with a key the gateways
// sharing the database share: the seq and a hash of the caller, which a
// cursor of another caller (or a made-up one) does not match.

// cursorKeyName names the sealing key in gateway_secrets.
const cursorKeyName = "cursor_key"

// loadCursorKey reads the sealing key, making it first if no gateway has:
// the insert of a fresh random key is ignored if another gateway's won.
func (s *sqlStore) loadCursorKey(ctx context.Context) error {
	var fresh [16]byte
	_, _ = rand.Read(fresh[:])
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gateway_secrets (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO NOTHING`), cursorKeyName, hex.EncodeToString(fresh[:])); err != nil {
		return err
	}
	var value string
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM gateway_secrets WHERE name = ?`), cursorKeyName).Scan(&value); err != nil {
		return err
	}
	key, err := hex.DecodeString(value)
	if err != nil || len(key) != 16 {
		return fmt.Errorf("gateway_secrets: %s is not a 128-bit key", cursorKeyName)
	}
	s.cursors, err = aes.NewCipher(key)
	return err
}

// callerTag is what binds a cursor to its caller.
func callerTag(caller string) []byte {
	sum := sha256.Sum256([]byte(caller))
	return sum[:8]
}

// encodeCursor seals seq, a position in caller's list.
func (s *sqlStore) encodeCursor(caller string, seq int64) string {
	var block [16]byte
	binary.BigEndian.PutUint64(block[:8], uint64(seq))
	copy(block[8:], callerTag(caller))
	s.cursors.Encrypt(block[:], block[:])
	return base64.RawURLEncoding.EncodeToString(block[:])
}

// decodeCursor opens a cursor encodeCursor made for caller: ErrBadCursor
// for anything else.
func (s *sqlStore) decodeCursor(caller, c string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) != 16 {
		return 0, ErrBadCursor
	}
	var block [16]byte
	s.cursors.Decrypt(block[:], raw)
	if string(block[8:]) != string(callerTag(caller)) {
		return 0, ErrBadCursor
	}
	seq := int64(binary.BigEndian.Uint64(block[:8]))
	if seq <= 0 {
		return 0, ErrBadCursor
	}
	return seq, nil
}
