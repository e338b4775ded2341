// The bare Worker the fidelity test compares the gateway with: it loads
// the modules it is sent with env.LOADER.load, as a user's own Worker
// would, with nothing in front of them, calls their fetch handler with the
// request the gateway's guests get by default, and answers with what the
// handler answered.
export default {
  async fetch(request, env) {
    const job = await request.json();
    const worker = env.LOADER.load({
      compatibilityDate: job.compatibilityDate,
      compatibilityFlags: job.compatibilityFlags,
      mainModule: job.mainModule,
      modules: job.modules,
      env: job.env,
      globalOutbound: null,
    });
    try {
      return await worker.getEntrypoint().fetch("http://localhost/");
    } catch (err) {
      return new Response(`bare Worker failed: ${err.stack}`, { status: 500 });
    }
  },
};
