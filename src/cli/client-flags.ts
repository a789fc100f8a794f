/** Flags every client command shares: how to reach the daemon. */

import { type FlagSpec, type FlagValues, parseFlags } from "../config/flags.js";
import { CtrwatchError } from "../errors.js";
import type { ApiEndpoint } from "./api-client.js";

export const DEFAULT_API_SOCKET = "/run/ctrwatch/api.sock";

export const endpointFlags: readonly FlagSpec[] = [
  {
    name: "api-socket",
    type: "string",
    valueName: "PATH",
    default: DEFAULT_API_SOCKET,
    description: "the daemon's API socket",
  },
  {
    name: "api-url",
    type: "string",
    valueName: "URL",
    description: "the daemon's API on TCP, e.g. http://127.0.0.1:9595",
  },
  { name: "help", type: "boolean", noEnv: true, description: "show this help" },
];

export function endpointOf(values: FlagValues): ApiEndpoint {
  const url = values["api-url"];
  if (typeof url === "string") {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new CtrwatchError("bad_request", `--api-url ${JSON.stringify(url)} is not a URL`);
    }
    if (parsed.protocol !== "http:" || parsed.pathname !== "/" || parsed.search || parsed.username) {
      throw new CtrwatchError("bad_request", `--api-url must look like http://HOST:PORT, not ${JSON.stringify(url)}`);
    }
    return { url: parsed };
  }
  return { socketPath: String(values["api-socket"] ?? DEFAULT_API_SOCKET) };
}

/** Parses a client command's argv: its own flags plus the endpoint flags, and its positional arguments. */
export function parseClientArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  own: readonly FlagSpec[],
  positionals: number,
) {
  return parseFlags([...own, ...endpointFlags], argv, env, { positionals });
}
