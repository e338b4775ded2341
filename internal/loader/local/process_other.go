//go:build !linux

package local

import "syscall"

func processAttrs() *syscall.SysProcAttr { return nil }

func lowerPriority(pid, nice int) error { return nil }
