import path from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

/** The project's own proto/ folder (same relative place from src/ under tsx and from dist/ when built). */
export const projectProtoDir = fileURLToPath(new URL("../../proto/", import.meta.url));

/**
 * Loads .proto files into one protobufjs Root. Imports resolve against `dir`; google/protobuf/* come from
 * protobufjs's bundled well-known types. Field names become camelCase (`container_id` → `containerId`).
 */
export function loadProtos(files: readonly string[], dir: string = projectProtoDir): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    target.includes("google/protobuf/") || path.isAbsolute(target) ? target : path.join(dir, target);
  root.loadSync(files as string[], { keepCase: false });
  root.resolveAll();
  return root;
}

/** What grpc-js needs to call one method: its path and its (de)serialisers. */
export interface RpcMethod<Req, Res> {
  readonly path: string;
  readonly responseStream: boolean;
  serialize(request: Req): Buffer;
  deserialize(bytes: Buffer): Res;
}

/**
 * Builds the grpc-js binding of `service`.`method` from the Root. Responses are protobufjs message objects, typed by
 * the caller's interface of the wire shape; the normalisation into records happens in one place (`records.ts`).
 */
export function rpcMethod<Req extends object, Res>(
  root: protobuf.Root,
  service: string,
  method: string,
): RpcMethod<Req, Res> {
  const definition = root.lookupService(service).methods[method];
  if (!definition) throw new Error(`${service} has no method ${method} in proto/`);
  const requestType = root.lookupType(definition.requestType);
  const responseType = root.lookupType(definition.responseType);
  return {
    path: `/${service}/${method}`,
    responseStream: definition.responseStream === true,
    serialize: (request) => Buffer.from(requestType.encode(requestType.fromObject(request)).finish()),
    deserialize: (bytes) => responseType.decode(bytes) as unknown as Res,
  };
}
