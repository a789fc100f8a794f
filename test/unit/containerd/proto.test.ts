/**
 * The project's proto/ subset against containerd's own declarations: every message and enum kept must have the
 * upstream names, numbers and types. Three upstreams: containerd 1.6 (Debian bookworm's
 * golang-github-containerd-containerd-dev, under /usr/share/gocode) for everything 1.6 has; containerd 2.x (Debian
 * sid's golang-github-containerd-containerd-api-dev, its api/ folder in CTRWATCH_CONTAINERD2_API — `bash .ci/run`
 * sets it from `scripts/containerd-line.sh protos sid`) for the sandbox store subset, which 1.6 does not have, and for
 * the event envelope, which 2.x moved to `containerd.types.Envelope`. And the client must be read-only: no RPC that
 * creates, updates, kills or deletes is even declared.
 */
import { existsSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import protobuf from "protobufjs";
import { containerdProtoFiles, containerdRoot } from "../../../src/containerd/client.js";
import { projectProtoDir } from "../../../src/containerd/proto.js";

const GOCODE = "/usr/share/gocode/src";
const UPSTREAM = path.join(GOCODE, "github.com/containerd/containerd/api");
const CGROUPS = path.join(GOCODE, "github.com/containerd/cgroups");
const upstreamMissing = !existsSync(UPSTREAM)
  ? `${UPSTREAM} is missing (apt-get install golang-github-containerd-containerd-dev)`
  : !existsSync(CGROUPS)
    ? `${CGROUPS} is missing (apt-get install golang-github-containerd-cgroups-dev)`
    : undefined;

/** proto/'s files that containerd 1.6 does not have (its sandbox store came with 1.7): checked against 2.x only. */
const SANDBOX_FILES = ["containerd/services/sandbox/v1/sandbox.proto", "containerd/types/sandbox.proto"] as const;

/** containerd 2.x's api/ folder (sid's golang-github-containerd-containerd-api-dev), or why it is not usable. */
const CONTAINERD2_API = process.env.CTRWATCH_CONTAINERD2_API ?? "";
const containerd2Missing = containerd2Problem(CONTAINERD2_API);

function containerd2Problem(api: string): string | undefined {
  const how = "the api/ folder `scripts/containerd-line.sh protos sid` prints; bash .ci/run sets it";
  if (api === "") return `CTRWATCH_CONTAINERD2_API is not set (${how})`;
  if (!existsSync(path.join(api, "types/sandbox.proto"))) {
    return `CTRWATCH_CONTAINERD2_API=${api} has no types/sandbox.proto (${how})`;
  }
  if (existsSync(UPSTREAM) && realpathSync(api) === realpathSync(UPSTREAM)) {
    return `CTRWATCH_CONTAINERD2_API=${api} is bookworm's containerd 1.6 api/ folder, not 2.x's (${how})`;
  }
  return undefined;
}

/** The RPCs ctrwatch may declare: all of them read. */
const readOnlyMethods = new Set(["Get", "List", "ListStream", "Metrics", "Subscribe", "Version", "Mounts", "Check"]);

function services(root: protobuf.NamespaceBase): protobuf.Service[] {
  return root.nestedArray.flatMap((nested) =>
    nested instanceof protobuf.Service ? [nested] : nested instanceof protobuf.Namespace ? services(nested) : [],
  );
}

function typesAndEnums(root: protobuf.NamespaceBase): (protobuf.Type | protobuf.Enum)[] {
  return root.nestedArray.flatMap((nested) => {
    if (nested instanceof protobuf.Enum) return [nested];
    if (nested instanceof protobuf.Type) return [nested, ...typesAndEnums(nested)];
    if (nested instanceof protobuf.Namespace) return typesAndEnums(nested);
    return [];
  });
}

/** The file below proto/ that declares `object` (e.g. `containerd/types/sandbox.proto`). */
function ourFile(object: protobuf.ReflectionObject): string {
  return object.filename ? path.relative(projectProtoDir, object.filename) : "";
}

function inSandboxFiles(object: protobuf.ReflectionObject): boolean {
  return (SANDBOX_FILES as readonly string[]).includes(ourFile(object));
}

const descriptorProto = createRequire(import.meta.url).resolve("protobufjs/google/protobuf/descriptor.proto");

test("the containerd client declares only read RPCs", (t) => {
  const declared = services(containerdRoot()).flatMap((service) =>
    Object.keys(service.methods).map((method) => `${service.fullName.slice(1)}/${method}`),
  );
  t.true(declared.length >= 8);
  const mutating = declared.filter((name) => !readOnlyMethods.has(name.split("/").at(-1) ?? ""));
  t.deepEqual(mutating, [], `mutating RPCs declared: ${mutating.join(", ")}`);
  t.false(declared.some((name) => /\/(Create|Delete|Kill|Start|Update|Publish|Exec|Pause|Remove)/.test(name)));
});

test("the sandbox subset declares the Store's List and Get and nothing else", (t) => {
  const sandboxServices = services(containerdRoot()).filter(inSandboxFiles);
  // 2.x's sandbox.proto also has a Controller service (Create, Start, Stop, Shutdown, ...): it must not be declared.
  t.deepEqual(
    sandboxServices.map((service) => service.fullName),
    [".containerd.services.sandbox.v1.Store"],
  );
  const store = containerdRoot().lookupService("containerd.services.sandbox.v1.Store");
  t.deepEqual(Object.keys(store.methods).sort(), ["Get", "List"]);
  for (const method of Object.values(store.methods)) {
    t.false(Boolean(method.requestStream) || Boolean(method.responseStream), `Store/${method.name} is unary`);
  }
});

/** A field's type by full name (`types.Metric` and `containerd.types.Metric` are the same type). */
function typeName(field: protobuf.Field): string {
  return field.resolvedType?.fullName ?? field.type;
}

/** Number, type, repeated and map (and a map's key type) of `ours` against `theirs`; counts one check. */
function compareField(t: ExecutionContext, label: string, ours: protobuf.Field, theirs: protobuf.Field): void {
  t.is(ours.id, theirs.id, `${label} number`);
  t.is(typeName(ours), typeName(theirs), `${label} type`);
  t.is(ours.repeated, theirs.repeated, `${label} repeated`);
  t.is(ours.map, theirs.map, `${label} map`);
  if (ours instanceof protobuf.MapField && theirs instanceof protobuf.MapField) {
    t.is(ours.keyType, theirs.keyType, `${label} map key type`);
  }
}

/**
 * Compares the messages, enums and service methods of ours that `include` selects with `upstream`'s of the same full
 * name: names, numbers, types, repeated/map; a method's request and response types and streaming. Returns how many
 * fields, values and methods it compared.
 */
function compareWithUpstream(
  t: ExecutionContext,
  upstream: protobuf.Root,
  include: (object: protobuf.ReflectionObject) => boolean,
  upstreamName: string,
): number {
  let checked = 0;
  for (const local of typesAndEnums(containerdRoot())) {
    if (local.fullName.startsWith(".grpc.") || local.fullName.startsWith(".google.") || !include(local)) continue;
    const remote = upstream.lookup(local.fullName);
    if (!remote) {
      t.fail(`${local.fullName} does not exist in ${upstreamName}`);
      continue;
    }
    if (local instanceof protobuf.Type) {
      if (!(remote instanceof protobuf.Type)) {
        t.fail(`${local.fullName} is not a message in ${upstreamName}`);
        continue;
      }
      for (const field of local.fieldsArray) {
        const theirs: protobuf.Field | undefined = remote.fields[field.name];
        if (!theirs) {
          t.fail(`${local.fullName}.${field.name} does not exist in ${upstreamName}`);
          continue;
        }
        compareField(t, `${local.fullName}.${field.name}`, field, theirs);
        checked++;
      }
    } else {
      if (!(remote instanceof protobuf.Enum)) {
        t.fail(`${local.fullName} is not an enum in ${upstreamName}`);
        continue;
      }
      for (const [name, value] of Object.entries(local.values)) {
        t.is(remote.values[name], value, `${local.fullName}.${name}`);
        checked++;
      }
    }
  }
  for (const service of services(containerdRoot())) {
    if (service.fullName.startsWith(".grpc.") || !include(service)) continue;
    const remote = upstream.lookup(service.fullName);
    if (!(remote instanceof protobuf.Service)) {
      t.fail(`service ${service.fullName} does not exist in ${upstreamName}`);
      continue;
    }
    for (const [name, method] of Object.entries(service.methods)) {
      const theirs: protobuf.Method | undefined = remote.methods[name];
      if (!theirs) {
        t.fail(`${service.fullName}/${name} does not exist in ${upstreamName}`);
        continue;
      }
      const label = `${service.fullName}/${name}`;
      t.is(method.resolvedRequestType?.fullName, theirs.resolvedRequestType?.fullName, `${label} request type`);
      t.is(method.resolvedResponseType?.fullName, theirs.resolvedResponseType?.fullName, `${label} response type`);
      t.is(Boolean(method.requestStream), Boolean(theirs.requestStream), `${label} request streaming`);
      t.is(Boolean(method.responseStream), Boolean(theirs.responseStream), `${label} response streaming`);
      checked++;
    }
  }
  return checked;
}

/**
 * Registers an upstream check: skipped with `missing` in its title on a developer machine that lacks the upstream
 * files, run (and failed with the reason) under CI=true.
 */
function upstreamTest(title: string, missing: string | undefined, body: (t: ExecutionContext) => void): void {
  const skip = missing !== undefined && process.env.CI !== "true";
  (skip ? test.skip : test)(skip ? `${title} [skipped: ${missing}]` : title, (t) => {
    if (missing !== undefined) {
      t.fail(`cannot compare under CI=true: ${missing}`);
      return;
    }
    body(t);
  });
}

upstreamTest(
  "every kept message, field and enum value matches containerd 1.6's own protos (all but the sandbox files)",
  upstreamMissing,
  (t) => {
    const upstream = new protobuf.Root();
    upstream.resolvePath = (_origin, target) => {
      if (target.endsWith("google/protobuf/descriptor.proto")) return descriptorProto;
      if (target.includes("google/protobuf/")) return target;
      if (target.startsWith("gogoproto/")) return path.join(GOCODE, "github.com/gogo/protobuf", target);
      if (path.isAbsolute(target)) return target;
      return path.join(GOCODE, target);
    };
    // Our files mirror containerd/api's layout below proto/containerd and containerd/cgroups' below proto/cgroups
    // (grpc/health is not containerd's). The sandbox files are not in 1.6: they are checked against 2.x below.
    const upstreamFile = (file: string) =>
      file.startsWith("cgroups/")
        ? path.join(GOCODE, "github.com/containerd", file)
        : path.join(UPSTREAM, file.replace(/^containerd\//, ""));
    for (const file of SANDBOX_FILES) {
      t.false(existsSync(upstreamFile(file)), `${file} exists in 1.6 now: compare it here too`);
    }
    const ours = containerdProtoFiles.filter(
      (file) =>
        (file.startsWith("containerd/") || file.startsWith("cgroups/")) &&
        !(SANDBOX_FILES as readonly string[]).includes(file),
    );
    upstream.loadSync(ours.map(upstreamFile));
    upstream.resolveAll();

    const checked = compareWithUpstream(t, upstream, (object) => !inSandboxFiles(object), "containerd 1.6");
    t.true(checked > 50, `checked ${checked} fields`);
  },
);

/**
 * A Root of containerd 2.x's protos from CTRWATCH_CONTAINERD2_API alone: its imports
 * (`github.com/containerd/containerd/api/...`) resolve inside that folder, google/protobuf/* to protobufjs's bundled
 * copies; anything else is an error rather than a fallback to bookworm's 1.6 files.
 */
function containerd2Root(files: readonly string[]): protobuf.Root {
  const api = path.resolve(CONTAINERD2_API);
  const prefix = "github.com/containerd/containerd/api/";
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target.endsWith("google/protobuf/descriptor.proto")) return descriptorProto;
    if (target.includes("google/protobuf/")) return target;
    if (target.startsWith(prefix)) return path.join(api, target.slice(prefix.length));
    if (path.isAbsolute(target) && target.startsWith(`${api}${path.sep}`)) return target;
    throw new Error(`containerd 2.x proto import ${target} would resolve outside ${api}`);
  };
  root.loadSync(files.map((file) => path.join(api, file)));
  root.resolveAll();
  return root;
}

upstreamTest(
  "the sandbox store subset matches containerd 2.x's protos (names, numbers, types; Store List and Get)",
  containerd2Missing,
  (t) => {
    const upstream = containerd2Root(["services/sandbox/v1/sandbox.proto"]);
    const sandbox = upstream.lookupType("containerd.types.Sandbox");
    t.true(sandbox.filename?.startsWith(path.resolve(CONTAINERD2_API)), `Sandbox came from ${sandbox.filename}`);
    const checked = compareWithUpstream(t, upstream, inSandboxFiles, "containerd 2.x");
    // Sandbox: 5 fields; the four request and response messages: 1 each; the Store: 2 methods.
    t.true(checked >= 11, `checked ${checked} fields and methods`);
  },
);

upstreamTest(
  "containerd 2.x's event envelope (containerd.types.Envelope) is wire-compatible with the one proto/ declares",
  containerd2Missing,
  (t) => {
    const upstream = containerd2Root(["services/events/v1/events.proto"]);
    const subscribe = upstream.lookupService("containerd.services.events.v1.Events").methods.Subscribe;
    if (!subscribe) {
      t.fail("containerd 2.x's Events service has no Subscribe");
      return;
    }
    t.true(Boolean(subscribe.responseStream), "Subscribe streams");
    const theirs = subscribe.resolvedResponseType;
    t.is(theirs?.fullName, ".containerd.types.Envelope", "2.x's Subscribe streams containerd.types.Envelope");
    t.true(theirs?.filename?.endsWith(`${path.sep}types${path.sep}event.proto`), `declared in ${theirs?.filename}`);
    if (!theirs) return;
    t.is(subscribe.resolvedRequestType?.fullName, ".containerd.services.events.v1.SubscribeRequest");

    // What the client decodes: proto/'s Envelope (1.6's name, checked against 1.6 above). Wire compatibility is
    // field numbers and types; names and the package may differ.
    const ours = containerdRoot().lookupType("containerd.services.events.v1.Envelope");
    const local = containerdRoot().lookupService("containerd.services.events.v1.Events").methods.Subscribe;
    t.is(local?.resolvedResponseType, ours, "proto/'s Subscribe streams the Envelope compared here");
    for (const field of ours.fieldsArray) {
      const remote = theirs.fieldsById[field.id];
      if (!remote) {
        t.fail(`Envelope field ${field.id} (${field.name}) does not exist in containerd.types.Envelope`);
        continue;
      }
      compareField(t, `Envelope field ${field.id} (${field.name} / ${remote.name})`, field, remote);
    }
    const extra = theirs.fieldsArray.filter((field) => !ours.fieldsById[field.id]);
    if (extra.length > 0) t.log(`2.x's Envelope has fields proto/ ignores: ${extra.map((f) => f.id).join(", ")}`);
    t.deepEqual(
      ours.fieldsArray.map((field) => field.id).sort(),
      [1, 2, 3, 4],
      "timestamp=1, namespace=2, topic=3, event=4",
    );

    // The request side of Subscribe is the same message under the same name in both.
    const request = upstream.lookupType("containerd.services.events.v1.SubscribeRequest");
    const ourRequest = containerdRoot().lookupType("containerd.services.events.v1.SubscribeRequest");
    for (const field of ourRequest.fieldsArray) {
      const remote = request.fields[field.name];
      if (!remote) t.fail(`SubscribeRequest.${field.name} does not exist in 2.x`);
      else compareField(t, `SubscribeRequest.${field.name}`, field, remote);
    }
  },
);
