package config

// The local runtime's derived defaults: each follows the machine (Machine)
// unless set.

// Processes is the pool's workerd processes: runtime.processes, else (0)
// one per CPU.
func (c *Config) Processes() int {
	if c.Runtime.Processes > 0 {
		return c.Runtime.Processes
	}
	return c.machine().CPUs
}

// MemoryLimitMB is each workerd process's hard memory bound in MiB:
// runtime.memory_limit_mb, else (0) half the memory the gateway may use
// (Machine.MemoryBytes) shared by the pool's processes and one more (the
// spare, or a process running one execution alone), at least 256.
func (c *Config) MemoryLimitMB() int {
	if c.Runtime.MemoryLimitMB > 0 {
		return c.Runtime.MemoryLimitMB
	}
	return max(256, int(c.machine().MemoryBytes/2/int64(c.Processes()+1)>>20))
}

// MaxConcurrency is the ceiling on the executions one process runs at once,
// over what its memory admits: runtime.max_concurrency, else (0) a quarter
// of the gateway's open files per process (an execution holds a connection
// from its client and one to its process; a queued one, its client's),
// between 64 and 4,096.
func (c *Config) MaxConcurrency() int {
	if c.Runtime.MaxConcurrency > 0 {
		return c.Runtime.MaxConcurrency
	}
	return min(4096, max(64, c.machine().OpenFiles/(4*c.Processes())))
}

// QueueSize is the most executions waiting for room: runtime.queue_size,
// else (0) as many as the pool may run at once (Processes ×
// MaxConcurrency); negative: none.
func (c *Config) QueueSize() int {
	switch n := c.Runtime.QueueSize; {
	case n > 0:
		return n
	case n < 0:
		return 0
	}
	return c.Processes() * c.MaxConcurrency()
}

// machine is c.Machine, or this machine when it was not set.
func (c *Config) machine() Machine {
	if c.Machine.CPUs > 0 {
		return c.Machine
	}
	return ThisMachine()
}
