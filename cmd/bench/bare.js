// The bare alternative the gateway is measured against: a minimal loader
// Worker with no gateway, no capture, no streaming. POST / runs the posted
// code in a fresh isolate and returns its body. POST /warm runs it in a warm
// isolate kept by LOADER.get under one fixed id per distinct code, date and
// flags, as the gateway's isolate "reuse" does. POST /floor creates `loops`
// isolates one after another inside this one request (no HTTP per isolate)
// and returns the average time each took: the floor of isolate creation.
const warmIds = new Map(); // code, date and flags -> the warm isolate's id

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    const job = await request.json();
    const code = () => ({
      compatibilityDate: job.compatibilityDate,
      compatibilityFlags: job.compatibilityFlags ?? [],
      mainModule: "main.js",
      modules: { "main.js": job.code },
      globalOutbound: null,
    });
    if (url.pathname === "/floor") {
      const start = Date.now();
      for (let i = 0; i < job.loops; i++) {
        const worker = env.LOADER.load(code());
        const response = await worker.getEntrypoint().fetch("http://localhost/");
        await response.text();
      }
      return Response.json({ msPerIsolate: (Date.now() - start) / job.loops });
    }
    let worker;
    if (url.pathname === "/warm") {
      const key = JSON.stringify([job.compatibilityDate, job.compatibilityFlags ?? [], job.code]);
      let id = warmIds.get(key);
      if (id === undefined) {
        id = "warm" + warmIds.size;
        warmIds.set(key, id);
      }
      worker = env.LOADER.get(id, code);
    } else {
      worker = env.LOADER.load(code());
    }
    const response = await worker.getEntrypoint().fetch("http://localhost/");
    return new Response(await response.text());
  },
};
