package config

import (
	"time"
)

// Quotas returns the default per-key quotas in effect. A value set wins.
// Unset (0), they follow from who can call: with no API keys there is one
// anonymous caller, the operator on loopback or what authenticates in
// front, and no quota (0, unlimited) applies, so it can use the whole pool;
// with keys, a key may have what the pool holds at once (PoolCapacity)
// running or queued, and start that many executions per second of the
// window.
func (c *Config) Quotas() QuotaConfig {
	q := c.Quota
	if len(c.Auth.Keys) == 0 {
		return q
	}
	if q.Concurrency == 0 {
		q.Concurrency = c.PoolCapacity()
	}
	if q.Requests == 0 {
		q.Requests = q.Concurrency * max(1, int(q.Window.Seconds()))
	}
	return q
}

// PoolCapacity is the most executions the local pool holds at once,
// running or waiting in its queue: Processes × MaxConcurrency +
// QueueSize. How many run at once is what the processes' memory admits
// (runtime.memory_limit_mb), up to that ceiling.
func (c *Config) PoolCapacity() int {
	return c.Processes()*c.MaxConcurrency() + c.QueueSize()
}

// MaxQueuedPerKey is the most executions one key may have queued:
// storage.max_queued_per_key, else (0) with API keys a quarter of
// storage.max_queued, so one key's backlog leaves room for others; with
// none (one anonymous caller), storage.max_queued.
func (c *Config) MaxQueuedPerKey() int {
	if n := c.Storage.MaxQueuedPerKey; n > 0 {
		return n
	}
	if len(c.Auth.Keys) == 0 {
		return c.Storage.MaxQueued
	}
	return max(1, c.Storage.MaxQueued/4)
}

// MaxStoredBytesPerKey is the most bytes one key's records may take in the
// store: storage.max_bytes_per_key, else (0) room for 100 executions that
// used their whole output budget (a record holds its logs about four
// times over: as events, in the result's logs, in stdout or stderr, and
// their records' overhead; and its response body twice, in the result and
// its event).
func (c *Config) MaxStoredBytesPerKey() int64 {
	if n := c.Storage.MaxBytesPerKey; n > 0 {
		return n
	}
	return 100 * (4*int64(c.Execution.MaxLogBytes) + 2*c.Execution.MaxResponseBytes)
}

// ClientBufferBytes is the bytes of a stream's events held for a slow
// client: http.client_buffer_bytes, else (0) twice execution.max_log_bytes
// plus 1 MiB.
func (c *Config) ClientBufferBytes() int {
	if c.HTTP.ClientBuffer > 0 {
		return c.HTTP.ClientBuffer
	}
	return 2*c.Execution.MaxLogBytes + 1<<20
}

// MaxRequestLifetime bounds a POST /execute from its start to its last
// byte: http.max_request_lifetime, else (0) execution.max_timeout plus 30s
// (time to wait in the runtime's queue and to send the result).
func (c *Config) MaxRequestLifetime() time.Duration {
	if c.HTTP.MaxLifetime > 0 {
		return c.HTTP.MaxLifetime
	}
	return c.Execution.MaxTimeout + 30*time.Second
}
