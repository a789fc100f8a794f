/**
 * The project's proto/ subset against containerd's own declarations (Debian's golang-github-containerd-containerd-dev
 * ships them): every message and enum kept must have the upstream names, numbers and types. And the client must be
 * read-only: no RPC that creates, updates, kills or deletes is even declared.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import test from "ava";
import protobuf from "protobufjs";
import { containerdProtoFiles, containerdRoot } from "../../src/containerd/client.js";

const GOCODE = "/usr/share/gocode/src";
const UPSTREAM = path.join(GOCODE, "github.com/containerd/containerd/api");
const CGROUPS = path.join(GOCODE, "github.com/containerd/cgroups");
const upstreamMissing = !existsSync(UPSTREAM)
  ? `${UPSTREAM} is missing (apt-get install golang-github-containerd-containerd-dev)`
  : !existsSync(CGROUPS)
    ? `${CGROUPS} is missing (apt-get install golang-github-containerd-cgroups-dev)`
    : undefined;

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

test("the containerd client declares only read RPCs", (t) => {
  const declared = services(containerdRoot()).flatMap((service) =>
    Object.keys(service.methods).map((method) => `${service.fullName.slice(1)}/${method}`),
  );
  t.true(declared.length >= 8);
  const mutating = declared.filter((name) => !readOnlyMethods.has(name.split("/").at(-1) ?? ""));
  t.deepEqual(mutating, [], `mutating RPCs declared: ${mutating.join(", ")}`);
  t.false(declared.some((name) => /\/(Create|Delete|Kill|Start|Update|Publish|Exec|Pause|Remove)/.test(name)));
});

/** A field's type by full name (`types.Metric` and `containerd.types.Metric` are the same type). */
function typeName(field: protobuf.Field): string {
  return field.resolvedType?.fullName ?? field.type;
}

const skipUpstream = upstreamMissing !== undefined && process.env.CI !== "true";
const upstreamTitle = "every kept message, field and enum value matches containerd's own protos";

(skipUpstream ? test.skip : test)(
  skipUpstream ? `${upstreamTitle} [skipped: ${upstreamMissing}]` : upstreamTitle,
  (t) => {
    if (upstreamMissing) {
      t.fail(`cannot compare under CI=true: ${upstreamMissing}`);
      return;
    }
    const upstream = new protobuf.Root();
    const descriptor = createRequire(import.meta.url).resolve("protobufjs/google/protobuf/descriptor.proto");
    upstream.resolvePath = (_origin, target) => {
      if (target.endsWith("google/protobuf/descriptor.proto")) return descriptor;
      if (target.includes("google/protobuf/")) return target;
      if (target.startsWith("gogoproto/")) return path.join(GOCODE, "github.com/gogo/protobuf", target);
      if (path.isAbsolute(target)) return target;
      return path.join(GOCODE, target);
    };
    // Our files mirror containerd/api's layout below proto/containerd and containerd/cgroups' below proto/cgroups
    // (grpc/health is not containerd's).
    const ours = containerdProtoFiles.filter((file) => file.startsWith("containerd/") || file.startsWith("cgroups/"));
    upstream.loadSync(
      ours.map((file) =>
        file.startsWith("cgroups/")
          ? path.join(GOCODE, "github.com/containerd", file)
          : path.join(UPSTREAM, file.replace(/^containerd\//, "")),
      ),
    );
    upstream.resolveAll();

    let checked = 0;
    for (const local of typesAndEnums(containerdRoot())) {
      if (local.fullName.startsWith(".grpc.") || local.fullName.startsWith(".google.")) continue;
      const remote = upstream.lookup(local.fullName);
      t.truthy(remote, `${local.fullName} exists upstream`);
      if (local instanceof protobuf.Type) {
        t.true(remote instanceof protobuf.Type, `${local.fullName} is a message upstream`);
        for (const field of local.fieldsArray) {
          const theirs = (remote as protobuf.Type).fields[field.name];
          if (!theirs) {
            t.fail(`${local.fullName}.${field.name} does not exist upstream`);
            continue;
          }
          t.is(field.id, theirs.id, `${local.fullName}.${field.name} number`);
          t.is(typeName(field), typeName(theirs), `${local.fullName}.${field.name} type`);
          t.is(field.repeated, theirs.repeated, `${local.fullName}.${field.name} repeated`);
          t.is(field.map, theirs.map, `${local.fullName}.${field.name} map`);
          checked++;
        }
      } else {
        for (const [name, value] of Object.entries(local.values)) {
          t.is((remote as protobuf.Enum).values[name], value, `${local.fullName}.${name}`);
          checked++;
        }
      }
    }
    for (const service of services(containerdRoot())) {
      if (service.fullName.startsWith(".grpc.")) continue;
      const remote = upstream.lookupService(service.fullName);
      for (const [name, method] of Object.entries(service.methods)) {
        const theirs = remote.methods[name];
        if (!theirs) {
          t.fail(`${service.fullName}/${name} does not exist upstream`);
          continue;
        }
        t.is(method.resolvedRequestType?.fullName, theirs.resolvedRequestType?.fullName);
        t.is(method.resolvedResponseType?.fullName, theirs.resolvedResponseType?.fullName);
        t.is(Boolean(method.responseStream), Boolean(theirs.responseStream), `${service.fullName}/${name} streaming`);
        checked++;
      }
    }
    t.true(checked > 50, `checked ${checked} fields`);
  },
);
