//go:build !linux

package storetest

import "syscall"

// serverAttr runs the server as uid:gid when asUser; elsewhere than Linux
// the server outlives a test binary that dies without stopping it.
func serverAttr(uid, gid int, asUser bool) *syscall.SysProcAttr {
	if !asUser {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}
