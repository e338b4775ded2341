//go:build !unix

package store

import "os"

// lockFile opens path; without flock, one gateway per file is up to the
// operator.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}
