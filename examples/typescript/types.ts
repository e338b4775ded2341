// Types shared by the plugin. Only types live here: plugin.ts imports them
// with `import type`, which compiles to nothing, so this module is never
// evaluated.

/** The JSON body the plugin expects. */
export interface GreetRequest {
  name: string;
  tier?: string;
  languages?: string[];
}

/** The plugin's env: GREETING comes from the request's "env". */
export interface Env {
  GREETING?: string;
}

/** Anything with a name that can be greeted. */
export type Named = Pick<GreetRequest, "name">;
