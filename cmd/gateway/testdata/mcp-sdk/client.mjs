// The official MCP TypeScript SDK as a client of the gateway's MCP server:
// it connects over Streamable HTTP or stdio, makes the calls an agent
// makes, and prints what it observed as one JSON object for the Go test
// (cmd/gateway/mcp_sdk_test.go) to check.
//
//   node client.mjs http URL [KEY]
//   node client.mjs stdio COMMAND [ARG...]   (the environment is passed on)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [mode, target, ...rest] = process.argv.slice(2);

function transport() {
  if (mode === "http") {
    const headers = rest[0] ? { Authorization: `Bearer ${rest[0]}` } : {};
    return new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
  }
  return new StdioClientTransport({ command: target, args: rest, env: process.env, stderr: "pipe" });
}

const report = { cases: {} };
const t = transport();
let stderr = "";
if (mode === "stdio") t.stderr?.on("data", (d) => (stderr += d));
const client = new Client({ name: "sdk-test", version: "1.0.0" });
const logLines = [];
client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
  logLines.push(n.params);
});

try {
  await client.connect(t);
} catch (e) {
  // A refused connection is a case of its own (no key, a wrong key).
  await new Promise((r) => setTimeout(r, 200)); // the child's last stderr
  report.connectError = String(e?.message ?? e);
  report.stderr = stderr.slice(-2000);
  console.log(JSON.stringify(report));
  process.exit(0);
}

const { tools } = await client.listTools();
const execute = tools.find((x) => x.name === "execute");
report.tools = {
  names: tools.map((x) => x.name),
  required: execute?.inputSchema?.required ?? [],
  properties: Object.keys(execute?.inputSchema?.properties ?? {}),
  timeoutMaximum: execute?.inputSchema?.properties?.timeoutMs?.maximum,
  hasOutputSchema: !!execute?.outputSchema,
  topLevelCombinators: ["oneOf", "anyOf", "allOf"].filter((k) => k in (execute?.inputSchema ?? {})),
};

// call runs the execute tool; the SDK validates structuredContent against
// the tool's outputSchema, so a result that does not match it throws.
// With progress, the call has a progress token and the server sends the
// guest's lines as progress notifications; without, as log messages.
async function call(name, args, { withProgress = true } = {}) {
  let progress = 0;
  const options = { timeout: 60000 };
  if (withProgress) options.onprogress = () => progress++;
  try {
    const res = await client.callTool({ name: "execute", arguments: args }, undefined, options);
    report.cases[name] = {
      isError: !!res.isError,
      structured: res.structuredContent,
      text: res.content?.[0]?.text ?? "",
      bytes: JSON.stringify(res).length,
      progress,
    };
  } catch (e) {
    report.cases[name] = { thrown: String(e?.message ?? e) };
  }
}

await call("script", { code: "console.log('hi from a script');\nreturn { answer: 6 * 7 };" }, { withProgress: false });
await call("await", { code: "console.log(await Promise.resolve('hi'))" });
await call("worker", {
  code: 'export default { async fetch(request, env) { console.log("worker", env.NAME); return new Response("hello " + env.NAME); } };',
  env: { NAME: "sdk" },
});
await call("exception", { code: "function f() { throw new TypeError('bad input'); }\nf();" });
await call("timeout", { code: "await new Promise((r) => setTimeout(r, 5000));", timeoutMs: 300 });
await call("huge", { code: "for (let i = 0; i < 100000; i++) console.log('line ' + i + ' of a guest that prints far too much');" });
await call("invalid", { code: 42, timeoutMs: -1 });
report.logMessages = logLines.length;
report.logSample = logLines.find((l) => JSON.stringify(l.data).includes("hi from a script")) ?? null;

await client.close();
console.log(JSON.stringify(report));
