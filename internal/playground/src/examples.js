// The examples the page offers. Each sets the editor and the option fields.

const seed = `export default {
  async fetch(request, env, ctx) {
    console.log("Isolated worker running!");
    return new Response("Done");
  }
}
`;

const script = `// Plain code runs as the body of an async function:
// await and return work, and env and request are in scope.
const words = ["isolate", "worker", "loader", "isolate"];
const counts = {};
for (const w of words) counts[w] = (counts[w] ?? 0) + 1;
console.log("counted", words.length, "words");
await new Promise((r) => setTimeout(r, 10));
return counts; // comes back as returnValue
`;

const packages = `// npm packages: listed in dependencies, imported by name.
import { nanoid } from "nanoid";
import { z } from "zod";

const Order = z.object({ item: z.string(), qty: z.number().int().positive() });
const order = Order.parse({ item: "isolate", qty: 3 });
console.log("order", nanoid(8), order.item, "x", order.qty);
return order;
`;

const env = `export default {
  async fetch(request, env) {
    console.log(\`\${env.GREETING}, \${env.NAME}!\`);
    // A secret's value is masked wherever it would appear in the output.
    console.log("the token is", env.API_TOKEN);
    return Response.json({ limit: env.LIMIT, features: env.FEATURES });
  }
}
`;

const stream = `// Each console line reaches the page as it happens (an NDJSON stream).
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export default {
  async fetch(request, env, ctx) {
    for (let i = 1; i <= 5; i++) {
      console.log(\`tick \${i}\`);
      await sleep(400);
    }
    return new Response("five ticks");
  }
}
`;

const typescript = `interface Item { price: number; qty: number }
interface Order { id: string; items: Item[] }

function total(order: Order): number {
  return order.items.reduce((sum, item) => sum + item.price * item.qty, 0);
}

export default {
  async fetch(request: Request): Promise<Response> {
    const order: Order = { id: "A-1", items: [{ price: 2.5, qty: 4 }, { price: 10, qty: 1 }] };
    console.log(\`order \${order.id} totals \${total(order)}\`);
    return Response.json({ total: total(order) });
  },
};
`;

const error = `function connect(config) {
  return \`postgres://\${config.database.host}:5432\`;
}

export default {
  async fetch() {
    console.log("connecting...");
    const url = connect({ name: "demo" }); // no database: a TypeError
    return new Response(url);
  }
}
`;

const outbound = `// Only the hosts in allowOutbound are reachable: a request to
// any other host is refused, and the result lists it as denied.
export default {
  async fetch() {
    try {
      const res = await fetch("https://example.com/");
      console.log("status", res.status);
    } catch (err) {
      console.error("fetch failed:", err.message);
    }
    return new Response("done");
  }
}
`;

/** @type {{id: string, name: string, language: string, code: string, env?: object, secrets?: object, dependencies?: object, timeoutMs?: number, allowOutbound?: boolean|string[]}[]} */
export const examples = [
  { id: "seed", name: "Hello (the seed's)", language: "javascript", code: seed },
  { id: "script", name: "A plain script", language: "javascript", code: script },
  { id: "packages", name: "npm packages", language: "javascript", code: packages, dependencies: { nanoid: "^5.0.0", zod: "^3.23.0" } },
  {
    id: "env", name: "env and secrets", language: "javascript", code: env,
    env: { GREETING: "Hello", NAME: "playground", LIMIT: 3, FEATURES: { beta: true } },
    secrets: { API_TOKEN: "sk_test_not_a_real_token" },
  },
  { id: "stream", name: "Stream with timers", language: "javascript", code: stream, timeoutMs: 5000 },
  { id: "typescript", name: "TypeScript", language: "typescript", code: typescript },
  { id: "error", name: "An uncaught error", language: "javascript", code: error },
  { id: "outbound", name: "Outbound (denied)", language: "javascript", code: outbound, allowOutbound: ["api.example.com"] },
];
