package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuOf is the CPU time (user and system) processes pids have used, read
// from /proc/PID/stat; a process that is gone counts nothing.
func cpuOf(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		end := strings.LastIndexByte(s, ')')
		if end < 0 || end+2 > len(s) {
			continue
		}
		f := strings.Fields(s[end+2:]) // from field 3, the state
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += utime + stime
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// cpuSelf is the CPU time this process has used: the gateways, their
// recording writers and the load generator.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuSample is what one side's run cost in CPU, per execution.
type cpuSample struct {
	process float64 // µs of this process (gateway and load generator, or the load generator alone)
	runtime float64 // µs of the side's workerd processes
}

// measureCPU runs f, which makes n executions on the side whose runtime
// processes are pids, and returns its CPU per execution.
func measureCPU(n int, pids func() []int, f func()) cpuSample {
	self, rt := cpuSelf(), cpuOf(pids())
	f()
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(n, 1)) }
	return cpuSample{process: per(cpuSelf() - self), runtime: per(cpuOf(pids()) - rt)}
}
