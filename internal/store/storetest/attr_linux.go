package storetest

import "syscall"

// serverAttr runs the server as uid:gid (when asUser) and has the kernel
// stop it (SIGQUIT: immediate shutdown) when the test binary dies.
func serverAttr(uid, gid int, asUser bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
	if asUser {
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return attr
}
