package local

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// processAttrs makes the kernel kill workerd if the gateway dies, so no
// runtime outlives the gateway that started it.
func processAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// lowerPriority sets the nice value of every thread of process pid (on
// Linux a nice value is per thread; threads started later inherit it).
func lowerPriority(pid, nice int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return err
		}
	}
	return nil
}
