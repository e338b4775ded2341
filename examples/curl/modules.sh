#!/bin/sh
# Several modules: the main module imports a JavaScript module, a JSON module
# and a text module, by their names in "modules".
set -eu
. "$(dirname "$0")/common.sh"

execute <<'JSON'
{
  "modules": {
    "main.js": "import { shout } from './lib/shout.js'; import config from './config.json'; import banner from './banner.txt'; export default { fetch() { console.log(banner.trim()); return new Response(shout(config.greeting)); } }",
    "lib/shout.js": "export function shout(s) { return s.toUpperCase() + '!'; }",
    "config.json": "{\"greeting\": \"hello from modules\"}",
    "banner.txt": "== a text module ==\n"
  },
  "mainModule": "main.js"
}
JSON
