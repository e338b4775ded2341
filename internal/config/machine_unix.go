//go:build unix

package config

import "syscall"

// openFiles is the process's hard limit of open files.
func openFiles() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max == 0 {
		return fallbackOpenFiles
	}
	return int(min(lim.Max, 1<<20))
}
