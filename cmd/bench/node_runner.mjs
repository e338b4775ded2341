// The naive alternative: one node process per execution. Imports the module
// named on the command line, calls its fetch handler, prints the body.
const mod = await import(process.argv[2]);
const response = await mod.default.fetch(new Request("http://localhost/"), {}, { waitUntil() {} });
process.stdout.write(await response.text());
