/** `--api-listen` / `--metrics-listen HOST:PORT`: parsed, and refused off loopback unless remote access was asked for. */
import { isIP } from "node:net";
import { CtrwatchError } from "../errors.js";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The flags a listen address comes from, for the messages that refuse it. */
export interface ListenFlags {
  readonly flag: string;
  readonly allowFlag: string;
  /** What would be served, e.g. "the API (it has no authentication)". */
  readonly what: string;
}

const apiFlags: ListenFlags = {
  flag: "--api-listen",
  allowFlag: "--api-allow-remote",
  what: "the API",
};

export function parseListenAddress(text: string, allowRemote: boolean, flags: ListenFlags = apiFlags): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!match || !host || !Number.isInteger(port) || port > 65_535) {
    throw new CtrwatchError(
      "bad_request",
      `${flags.flag} ${JSON.stringify(text)} is not HOST:PORT (e.g. 127.0.0.1:9595)`,
    );
  }
  if (host !== "localhost" && isIP(host) === 0) {
    throw new CtrwatchError(
      "bad_request",
      `${flags.flag} host ${JSON.stringify(host)} must be an IP address or localhost`,
    );
  }
  if (!allowRemote && !isLoopback(host)) {
    throw new CtrwatchError(
      "bad_request",
      `refusing to serve ${flags.what} on non-loopback ${host} without ${flags.allowFlag} (${flags === apiFlags ? "the API has no authentication" : "it has no authentication"})`,
    );
  }
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return mapped?.[1] ? mapped[1].startsWith("127.") : false;
}

/**
 * Whether a request's Host header names this machine's loopback (`localhost`, `127.x.y.z`, `[::1]`, any port). A
 * loopback listener answers only such requests: a web page whose name was re-pointed at 127.0.0.1 (DNS rebinding)
 * sends its own name, and must not read the API through the user's browser. No Host header (HTTP/1.0) is allowed.
 */
export function isLoopbackHostHeader(header: string | undefined): boolean {
  if (header === undefined) return true;
  const bracketed = /^\[([^\]]+)\](?::\d*)?$/.exec(header);
  const host = bracketed ? bracketed[1] : header.replace(/:\d*$/, "");
  return host !== undefined && isLoopback(host.toLowerCase());
}
