// An AI-agent style tool runner. A model planned the steps (the request
// body); this code carries them out against the company's inventory API
// through env.inventory, a capability: it may call that API, and only that
// API, without ever holding its token. It prints what it does as it goes
// and answers with a summary for the model's next turn.
export default {
  async fetch(request, env) {
    const plan = await request.json();
    const results = [];
    for (const step of plan.steps) {
      console.log(`step: ${step.tool} ${JSON.stringify(step.args)}`);
      try {
        results.push({ tool: step.tool, ok: true, value: await tools[step.tool](env, step.args) });
      } catch (err) {
        console.error(`step ${step.tool} failed: ${err.message}`);
        results.push({ tool: step.tool, ok: false, error: err.message });
      }
    }
    return Response.json({ goal: plan.goal, results });
  },
};

// The tools the model may plan with; each is one call of the capability.
const tools = {
  async lookupOrder(env, { id }) {
    return json(await env.inventory.fetch(`orders/${encodeURIComponent(id)}`));
  },
  async checkStock(env, { sku }) {
    return json(await env.inventory.fetch(`stock?sku=${encodeURIComponent(sku)}`));
  },
  async addNote(env, { id, text }) {
    return json(await env.inventory.fetch(`orders/${encodeURIComponent(id)}/notes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text }),
    }));
  },
  // A step a confused (or prompt-injected) model might plan: reach past the
  // API, or delete. Both are refused by the gateway, and recorded.
  async escape(env) {
    return json(await env.inventory.fetch("../admin/users"));
  },
  async cancelOrder(env, { id }) {
    return json(await env.inventory.fetch(`orders/${encodeURIComponent(id)}`, { method: "DELETE" }));
  },
};

async function json(response) {
  if (!response.ok) throw new Error(`inventory answered ${response.status}`);
  return response.json();
}
