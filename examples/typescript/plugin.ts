// A Worker written in TypeScript: an interface, an enum, a generic helper and
// a type-only import of a second module. The gateway compiles it to
// JavaScript before running it (run.sh sends both files as "modules").
import type { Env, GreetRequest, Named } from "./types.ts";

enum Tier {
  Free = "free",
  Pro = "pro",
}

interface Reply {
  message: string;
  tier: Tier;
  perks: readonly string[];
}

const perks: Record<Tier, readonly string[]> = {
  [Tier.Free]: ["greeting"],
  [Tier.Pro]: ["greeting", "priority", "emoji"],
};

function tierOf(value: string | undefined): Tier {
  return value === Tier.Pro ? Tier.Pro : Tier.Free;
}

function greet<T extends Named>(who: T, greeting: string): string {
  return `${greeting}, ${who.name}!`;
}

// readRequest takes a JSON GreetRequest from a POST, else ?name= and ?tier=.
async function readRequest(request: Request): Promise<GreetRequest> {
  if (request.method === "POST") {
    return (await request.json()) as GreetRequest;
  }
  const params = new URL(request.url).searchParams;
  return { name: params.get("name") ?? "world", tier: params.get("tier") ?? undefined };
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const body = await readRequest(request);
    const tier: Tier = tierOf(body.tier);
    const reply: Reply = {
      message: greet(body, env.GREETING ?? "Hello"),
      tier,
      perks: perks[tier],
    };
    console.log(`greeted ${body.name} on the ${tier} tier`);
    return Response.json(reply);
  },
};
