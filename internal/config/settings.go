package config

import (
	"fmt"
	"strings"

	"github.com/dynamic-workers/gateway/worker"
)

// Setting is one configuration key: its default, the flag that sets it (if
// any), what it means and which values it takes.
type Setting struct {
	Key     string
	Default any
	Flag    string
	Help    string
	// AltEnv is a second environment variable that sets it, read when the
	// first is unset (CLOUDFLARE_API_TOKEN, as wrangler reads it).
	AltEnv string
	// Secret settings are never shown.
	Secret bool
	// Check, if set, refuses a bad value of the setting (its Go value, as
	// decoded into Config); Validate names the key in front of its error.
	Check func(v any) error
	// Backend, if set, limits Check to that backend: cloudflare.url matters
	// only when the executions run on Cloudflare.
	Backend string
	// Value names a flag's value in --help ("host:port", "n"); a setting
	// with a Flag has one.
	Value string
}

// Env returns the environment variable that sets s.
func (s Setting) Env() string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(s.Key, ".", "_"))
}

// EnvPrefix starts every environment variable the gateway reads.
const EnvPrefix = "GATEWAY"

// Settings declares every configuration key.
var Settings = []Setting{
	{Key: "listen", Default: "127.0.0.1:8080", Flag: "listen", Value: "host:port", Help: "Address the HTTP server listens on (host:port).", Check: of(hostPort)},
	{Key: "log.level", Default: "info", Flag: "log-level", Value: "level", Help: "Log level: debug, info, warn or error.", Check: oneOf("debug", "info", "warn", "error")},
	{Key: "http.read_header_timeout", Default: "10s", Flag: "", Help: "Time allowed to read a request's headers.", Check: positive},
	{Key: "http.max_request_bytes", Default: int64(10 << 20), Flag: "", Help: "Largest accepted request body, in bytes; larger ones get 413.", Check: positive},
	{Key: "http.read_timeout", Default: "60s", Flag: "", Help: "Time allowed to read a whole request, body included.", Check: positive},
	{Key: "http.idle_timeout", Default: "120s", Flag: "", Help: "How long an idle keep-alive connection stays open.", Check: positive},
	{Key: "http.max_header_bytes", Default: 64 << 10, Flag: "", Help: "Largest accepted request header block, in bytes.", Check: atLeast(4096)},
	{Key: "http.sse_heartbeat", Default: "15s", Flag: "", Help: "How long a Server-Sent Events stream may stay silent before a comment line keeps it alive (0s: never).", Check: notNegative},
	{Key: "http.write_timeout", Default: "10s", Flag: "", Help: "Longest one write of an answer (at most 64 KiB) may wait for the client to read; past it the connection is dropped. The execution does not wait for its client: its runtime is free once its result is in.", Check: positive},
	{Key: "http.client_buffer_bytes", Default: 0, Flag: "", Help: "Bytes of a stream's events held for a client that reads slower than its execution makes them, the result apart (0: twice execution.max_log_bytes plus 1 MiB). Past it the execution is cancelled and the connection dropped.", Check: derived},
	{Key: "http.max_request_lifetime", Default: "0s", Flag: "", Help: "Longest a POST /execute may last, from its start to the last byte of its answer, whatever its client does; then the connection is dropped (0s: execution.max_timeout plus 30s)."},
	{Key: "http.shutdown_grace", Default: "20s", Flag: "", Help: "On SIGTERM or SIGINT, how long the executions running here may take to finish (new ones are refused with 503 and Retry-After, /readyz answers 503). Then queued ones still running go back to the queue, unless they made an outbound request or capability call (or their retry is never): those finish here within their own timeout; synchronous ones end with runtime_crashed, as when a runtime is lost. Keep it, plus a few seconds, under the orchestrator's kill timeout (docs/operations.md).", Check: notNegative},
	{Key: "http.shutdown_delay", Default: "5s", Flag: "", Help: "On SIGTERM or SIGINT, how long the gateway goes on answering (503 to new executions, /readyz 503) even with nothing running, for load balancers to stop sending it requests; at most http.shutdown_grace.", Check: notNegative},
	{Key: "auth.keys", Default: "", Flag: "", Help: "API keys by name, each with the hash `gateway keys new NAME` prints. In a file: `keys: {ci: {hash: \"sha256:…\", revoked: false, requests: 0, concurrency: 0, max_queued: 0, callback_secret: \"…\", scope: execute}}` (callback_secret: the key's own callbacks.secret; file only, never shown; scope: execute, the default, runs code and reads its executions and /metrics, metrics reads only GET /metrics, for a scraper); in the environment: `ci=sha256:…,prom=sha256:…:metrics` (a scope after the hash). With no keys the gateway only listens on loopback, unless auth.disabled.", Check: of(checkKeys)},
	{Key: "auth.disabled", Default: false, Flag: "", Help: "Serve without API keys on any address. Only for a gateway behind something that authenticates for it."},
	{Key: "quota.requests", Default: 0, Flag: "", Help: "Executions a key may start per quota.window (per-key override: requests), on all the gateways of one storage.url together (counted in the database). 0: with API keys, quota.concurrency per second of the window; with none (one anonymous caller), no limit.", Check: derived},
	{Key: "quota.window", Default: "1m", Flag: "", Help: "The window of quota.requests.", Check: positive},
	{Key: "quota.concurrency", Default: 0, Flag: "", Help: "Executions a key may have running at once (per-key override: concurrency), synchronous and queued, on all the gateways of one storage.url together (counted in the database). 0: with API keys, what one gateway's pool holds at once, runtime.processes × runtime.max_concurrency + runtime.queue_size (their derived values where 0); with none (one anonymous caller), no limit.", Check: derived},
	{Key: "capabilities", Default: "", Help: "Services guests may call without holding their credentials, by name: `capabilities: {inventory: {url: \"http://10.0.3.7:9000/api/\", headers: {Authorization: \"Bearer ${INVENTORY_TOKEN}\"}, methods: [GET, POST], keys: [ci], timeout: 5s, max_calls: 50}}`. A request's `capabilities: [\"inventory\"]` gives its guest `env.inventory`, whose `fetch` reaches only URLs under url (internal addresses allowed), with only methods (default GET), at most max_calls times per execution (default 50), each within timeout (default 10s); the shim adds headers outside the guest, and their values are masked in all output. forward_headers: the guest's request headers passed on (default: " + strings.Join(worker.CapabilityRules.ForwardHeaders, ", ") + "; a name with _, a method or path override, a client address, Accept-Encoding, Range or the request's framing is refused). max_answer_bytes: the longest answer one call passes to the guest, masked, before it is cut (default " + fmt.Sprint(worker.CapabilityRules.MaxAnswerBytes) + "). cloudflare.vpc_service_id: on the cloudflare backend, the id of a Workers VPC service (a private service reached through a Cloudflare Tunnel) that the shim calls through, by a binding `gateway deploy` adds (" + worker.Contract.VPCBindingPrefix + "<name>); url then names the host and path asked of it (docs/cloudflare.md). A call's path under url may hold only letters, digits, -._~!$&'()*+,=:@ and percent-escapes of other characters that no server reads as a separator or dot; a _method parameter naming a method not allowed is refused (docs/security.md). keys: the API keys that may use it (empty: every caller). `${VAR}` in url and header values is read from the gateway's environment; an unset variable stops the start. Put credentials in headers: url's path is shown to callers (GET /capabilities) and guests. In the environment: the same as a JSON object.", Check: of(checkCapabilities)},
	{Key: "metrics.public", Default: false, Help: "Serve GET /metrics without an API key even when keys are configured (for a scraper on a trusted network)."},
	{Key: "backend", Default: "local", Flag: "backend", Value: "local|cloudflare", Help: "Where executions run: local (a supervised pool of workerd processes on this machine) or cloudflare (the shim deployed with `gateway deploy`, at cloudflare.url).", Check: oneOf("local", "cloudflare")},
	{Key: "cloudflare.url", Default: "", Help: "URL of the deployed shim, as `gateway deploy` prints it (cloudflare backend).", Check: of(checkShimURL), Backend: "cloudflare"},
	{Key: "cloudflare.shim_secret", Default: "", Help: "Secret the gateway signs its calls to the deployed shim with; the shim's SHIM_SECRET. At least 32 characters; `gateway deploy --rotate-secret` makes a new one (and keeps the old as SHIM_SECRET_PREVIOUS until the next deploy).", Secret: true, Check: of(checkShimSecret), Backend: "cloudflare"},
	{Key: "cloudflare.account_id", Default: "", AltEnv: "CLOUDFLARE_ACCOUNT_ID", Help: "Cloudflare account to deploy the shim to (`gateway deploy`)."},
	{Key: "cloudflare.api_token", Default: "", AltEnv: "CLOUDFLARE_API_TOKEN", Help: "Cloudflare API token that may edit Workers scripts (`gateway deploy`).", Secret: true},
	{Key: "cloudflare.script_name", Default: "dynamic-workers-shim", Help: "Name of the shim's Worker on Cloudflare."},
	{Key: "cloudflare.route", Default: "", Help: "Serve the shim on this route (\"shim.example.com/*\") instead of workers.dev; needs cloudflare.zone_id."},
	{Key: "cloudflare.custom_domain", Default: "", Help: "Serve the shim on this Custom Domain (\"shim.example.com\") instead of workers.dev or a route: Cloudflare makes its DNS record and certificate, no origin needed. Needs cloudflare.zone_id; not with cloudflare.route."},
	{Key: "cloudflare.zone_id", Default: "", Help: "Zone of cloudflare.route or cloudflare.custom_domain."},
	{Key: "cloudflare.api_base_url", Default: "", Help: "Cloudflare API base URL; empty for the real API (set for tests)."},
	{Key: "runtime.workerd", Default: "", Flag: "workerd", Value: "path", Help: "Path of the workerd binary. Empty: worker/node_modules/.bin/workerd, else workerd on PATH.", Check: of(existingFile)},
	{Key: "runtime.processes", Default: 0, Flag: "processes", Value: "n", Help: "workerd processes in the pool (0: one per CPU).", Check: notNegative},
	{Key: "runtime.max_concurrency", Default: 0, Flag: "", Help: "Ceiling on the executions one workerd process runs at once. Below it a process takes a new execution only while its memory allows: while what it holds (its resident memory, sampled at every probe, plus what the executions started since are estimated to take, an estimate learned from what the processes grow per execution in flight) stays under 80% of runtime.memory_limit_mb; a process that died of memory with no execution to blame lowers that share for a while. So executions that wait on I/O (a timer, a fetch, a capability call: a megabyte or two of isolate each) run by the thousand. 0: a quarter of the gateway's open-file limit per process (an execution holds a connection from its client and one to its process), between 64 and 4,096.", Check: derived},
	{Key: "runtime.max_starting", Default: 16, Flag: "", Help: "Executions one workerd process starts at once: making an isolate and running the guest's first turn is CPU-bound work, so the others wait in the queue a moment, the process keeps answering its probes through a burst, and CPU-bound executions spread over the pool. An execution has started once the shim answers (for a synchronous one that waits, within 100 ms).", Check: atLeast(1)},
	{Key: "runtime.queue_size", Default: 0, Flag: "", Help: "Executions that may wait for room on a process; beyond it requests get 503 runtime_unavailable with Retry-After (how long the queue takes to drain, at the rate executions have been starting). Executions running again after losing their process wait ahead of it and are never refused. 0: runtime.processes × runtime.max_concurrency, as many as the pool may run at once; -1: none.", Check: atLeastSaying(-1, "must be at least -1 (0: derived, -1: none)")},
	{Key: "runtime.queue_timeout", Default: "40s", Flag: "", Help: "Longest wait in the queue before 503 runtime_unavailable with Retry-After (40s: 2,000 executions sent at once to the defaults on a 2-core machine all start, docs/performance.md).", Check: positive},
	{Key: "runtime.start_timeout", Default: "20s", Flag: "", Help: "Time a starting workerd process has to answer before it is restarted.", Check: positive},
	{Key: "runtime.probe_interval", Default: "250ms", Flag: "", Help: "How often each process is probed, and how long a probe may take. A process that misses a probe takes no new executions; one that also holds an execution past its deadline is killed and replaced.", Check: positive},
	{Key: "runtime.recycle_after", Default: 10000, Flag: "", Help: "Replace a process gracefully after this many executions (0: never).", Check: notNegative},
	{Key: "runtime.recycle_rss_mb", Default: 512, Flag: "", Help: "Replace a process gracefully when its resident memory, less what its executions in flight are estimated to hold, exceeds this many MiB: what the runtime keeps of executions that ended (0: never).", Check: notNegative},
	{Key: "runtime.memory_limit_mb", Default: 0, Flag: "", Help: "Hard memory bound of each process in MiB, counting everything (ArrayBuffers, wasm memory, strings outside the V8 heap): a cgroup (v2 memory.max, or v1) per process where the gateway may create one, else a watchdog that kills a process past it at probe frequency. A process takes new executions only up to 80% of it (runtime.max_concurrency). When a process dies of it, the execution blamed ends memory_limit and the others run again: if nothing names one (no execution grew apart from the rest, the process did not grow faster than its new executions explain), it was load, not an attack, and they run again spread over the pool. 0: half the memory the gateway may use (the smaller of physical memory and its own cgroup's limit), shared by runtime.processes + 1, at least 256.", Check: zeroOrAtLeast(128)},
	{Key: "runtime.unresponsive_kill", Default: "0s", Flag: "", Help: "A process that fails its probes this long is killed and replaced, whatever it holds (0: twenty probe intervals, 5 s with the default probe interval). An execution that keeps its process busy without yielding this long loses it; the others on it run again.", Check: notNegative},
	{Key: "runtime.spare", Default: true, Help: "Keep one more workerd process started and idle, to take the place of a pool process that is lost (killed for a spinning guest, out of memory, crashed) at once, instead of every execution waiting while a new one starts."},
	{Key: "runtime.reuse_keys", Default: 100, Help: "Reuse keys (isolate \"reuse\": one per distinct code, env and caller) one process may hold; each key keeps up to 4 warm isolates, one per execution running at once. Reaching it replaces the process gracefully, since workerd never evicts them.", Check: atLeast(1)},
	{Key: "runtime.drain_timeout", Default: "60s", Flag: "", Help: "How long a process being replaced may finish its executions before it is stopped.", Check: positive},
	{Key: "runtime.v8_heap_mb", Default: 512, Flag: "", Help: "V8 heap limit of each isolate in MiB (0: V8's default). A guest past it ends with memory_limit; its process is replaced.", Check: zeroOrAtLeast(64)},
	{Key: "execution.compatibility_date", Default: "2026-11-17", Flag: "", Help: "Compatibility date of guests that do not name one (YYYY-MM-DD).", Check: of(date)},
	{Key: "execution.default_timeout", Default: "10s", Flag: "", Help: "Wall-clock limit of an execution that does not set timeoutMs.", Check: positive},
	{Key: "execution.max_timeout", Default: "60s", Flag: "", Help: "Largest timeoutMs a request may ask for."},
	{Key: "execution.max_response_bytes", Default: int64(1 << 20), Flag: "", Help: "Largest guest response body kept; longer ones are cut and marked truncated.", Check: positive},
	{Key: "execution.max_log_line_bytes", Default: 65536, Flag: "", Help: "Longest console message kept, in bytes; longer ones are cut and marked truncated.", Check: atLeast(64)},
	{Key: "execution.max_log_bytes", Default: 1 << 20, Flag: "", Help: "Console output kept per execution, in bytes, each line counting its bytes plus 64 (so 1 MiB keeps at most 16,384 lines, however short); past it console calls are dropped and the result is marked truncated."},
	{Key: "execution.max_code_bytes", Default: 8 << 20, Flag: "", Help: "Largest total size of an execution's code or modules, in bytes.", Check: positive},
	{Key: "execution.max_modules", Default: 64, Flag: "", Help: "Most modules an execution may have.", Check: atLeast(1)},
	{Key: "execution.max_env_bytes", Default: 1 << 20, Flag: "", Help: "Largest size of env and secrets together, as JSON, in bytes (Cloudflare's limit is 1 MiB).", Check: atLeast(2)},
	{Key: "execution.cpu_ms", Default: 0, Flag: "", Help: "Default limits.cpuMs passed to the Worker Loader (0: none). On the cloudflare backend, when not set, Cloudflare's 30000 (30 s of billed CPU per execution). Not enforced by the local runtime.", Check: notNegative},
	{Key: "execution.sub_requests", Default: 0, Flag: "", Help: "Default limits.subRequests passed to the Worker Loader (0: the platform's). Not enforced by the local runtime.", Check: notNegative},
	{Key: "storage.path", Default: "data/executions.db", Help: "SQLite file of execution records and the async queue (created with its directory), for one gateway. Empty (in the config file: an empty variable counts as unset), with no storage.url: no records, no /executions routes."},
	{Key: "storage.url", Default: "", Help: "postgres://… URL of a PostgreSQL database to keep records and the queue in instead of storage.path; any number of gateways may share it.", Secret: true, Check: of(checkStorageURL)},
	{Key: "storage.retention", Default: "168h", Help: "How long a record is kept after its execution ended; then it is deleted with its events.", Check: positive},
	{Key: "storage.workers", Default: 4, Help: "Queued executions this gateway runs at once.", Check: atLeast(1)},
	{Key: "storage.max_queued", Default: 1000, Help: "Most executions queued at once (all gateways on one database together); past it POST /executions answers 503 queue_full with Retry-After.", Check: atLeast(1)},
	{Key: "storage.max_bytes_per_key", Default: int64(0), Help: "Most bytes one key's records may take in the store (their results and events; all gateways on one database together; per-key override: max_stored_bytes); past it the key's oldest ended records are deleted, down to nine tenths of it. 0: room for 100 executions that used their whole output budget, 100 × (4 × execution.max_log_bytes + 2 × execution.max_response_bytes) (600 MiB at the defaults).", Check: derived},
	{Key: "storage.max_script_bytes_per_key", Default: int64(256 << 20), Help: "Most bytes one key's stored scripts may take in the store (every version, with its dependencies bundled; all gateways on one database together, give or take versions stored at the same moment): a PUT /scripts/{name} of a new version past it gets 507 scripts_full until the key deletes scripts.", Check: positive},
	{Key: "storage.max_file_bytes", Default: int64(0), Help: "Largest size of the SQLite file (storage.path); past it writes are refused as on a full disk: /readyz answers 503 and executions are refused with 503 storage_unavailable until records are deleted. 0: no bound but the disk's.", Check: atLeastSaying(0, "must not be negative (0: no bound)")},
	{Key: "storage.max_queued_per_key", Default: 0, Help: "Most executions one key may have queued at once (all gateways on one database together; per-key override: max_queued); past it POST /executions answers 429 queue_limited with Retry-After, and other keys still queue. 0: with API keys, a quarter of storage.max_queued (at least 1); with none (one anonymous caller), storage.max_queued.", Check: derived},
	{Key: "callbacks.secret", Default: "", Help: "Secret (at least 16 characters) signing the webhooks sent to callbackUrl (Gateway-Signature, see docs/webhooks.md), for keys without their own auth.keys.NAME.callback_secret. A key with neither cannot submit a callbackUrl (422): nothing is sent unsigned.", Secret: true, Check: of(checkCallbackSecret)},
	{Key: "callbacks.allow_private", Default: false, Help: "Let callbackUrl reach loopback (127.0.0.0/8, ::1), private (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7) and shared CGNAT (100.64.0.0/10) addresses, and local names (refused by default, like guest requests): for tests and receivers inside your network. Never link-local, cloud metadata (169.254.169.254, 100.100.100.200, fd00:ec2::254, …) or other special addresses: only callbacks.allow_cidrs opens those."},
	{Key: "callbacks.allow_cidrs", Default: []string{}, Help: "Non-public ranges callbackUrl may reach besides what callbacks.allow_private opens, each a CIDR or an address within one non-public range (10.20.0.0/16, 169.254.169.254): a narrower private subnet without allow_private, or a link-local, metadata or special range named on purpose. A range opens a metadata address only when it names that address itself (169.254.0.0/16 does not open 169.254.169.254). In the environment: comma-separated.", Check: of(checkAllowCIDRs)},
	{Key: "callbacks.timeout", Default: "10s", Help: "Bound on one webhook attempt, from connecting to reading the receiver's status.", Check: positive},
	{Key: "packages.enabled", Default: true, Help: "Let requests have npm dependencies (a dependencies member, or a package.json among their modules). false: such a request is refused (422)."},
	{Key: "packages.npm", Default: "npm", Help: "The npm binary that resolves and installs dependencies (it runs no package's scripts).", Check: of(nonEmpty)},
	{Key: "packages.registry", Default: "", Help: "Base URL of the npm registry dependencies come from. Empty: npm's own default, the public registry (what `npm config get registry` prints with no configuration).", Check: of(checkRegistryURL)},
	{Key: "packages.token", Default: "", Help: "Token sent to packages.registry as a bearer token (a private registry); npm itself never holds it.", Secret: true},
	{Key: "packages.allow", Default: []string{}, Help: "Package names dependencies may use, each a name or a pattern whose * stands for any characters (\"@acme/*\"); empty: any. Checked for every package of a set, those a dependency pulls in too. In the environment: comma-separated.", Check: of(checkPackagePatterns)},
	{Key: "packages.deny", Default: []string{}, Help: "Package names dependencies may not use, as packages.allow (deny wins): a request needing one, directly or not, gets 422 dependency_denied.", Check: of(checkPackagePatterns)},
	{Key: "packages.max_packages", Default: 500, Help: "Most packages one set of dependencies may have, every package it pulls in counted; past it 422 dependency_too_large.", Check: atLeast(1)},
	{Key: "packages.max_bytes", Default: int64(100 << 20), Help: "Most bytes one set of dependencies may unpack to (tar headers included); a tarball unpacking past it is stopped there (422 dependency_too_large).", Check: positive},
	{Key: "packages.resolve_timeout", Default: "60s", Help: "Longest one resolution may take, from npm's start to the last tarball; past it 503 dependency_unavailable, naming the packages the registry had not answered for.", Check: positive},
	{Key: "packages.refresh", Default: "10m", Help: "How long a resolution of ranges and dist-tags is reused before the registry is asked again; a set of exact versions is reused for as long as the cache keeps it.", Check: positive},
	{Key: "packages.offline", Default: false, Help: "Resolve nothing new: only sets of dependencies in the cache are used (whatever their age); any other request with dependencies gets 503 dependency_unavailable."},
	{Key: "packages.cache_dir", Default: "", Help: "Directory of the resolved sets and their bundles, kept by content. Empty: packages/ beside storage.path, or data/packages."},
	{Key: "packages.cache_max_bytes", Default: int64(2 << 30), Help: "Most bytes the dependency cache (packages.cache_dir) may take on disk: every resolved set with its resolutions and bundles, counted by the blocks they take, sets left by earlier runs too. Past it the sets least recently used that no execution is using are evicted (resolved again when next asked for); a new set larger than the whole bound gets 422 dependency_too_large, one that fits only in the room of sets in use 503 dependency_unavailable. At least packages.max_bytes.", Check: positive},
	{Key: "callbacks.max_retry_time", Default: "10m", Help: "Bound on one webhook delivery, from its first attempt to its last (also across a restart); retries back off from 1s to 1m.", Check: positive},
}
