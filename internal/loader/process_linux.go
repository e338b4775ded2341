package loader

import "syscall"

// processAttrs makes the kernel kill workerd if the gateway dies, so no
// runtime outlives the gateway that started it.
func processAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
