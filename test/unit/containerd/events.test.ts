import test from "ava";
import { containerdRoot } from "../../../src/containerd/client.js";
import { EventDecoder } from "../../../src/containerd/events.js";

const root = containerdRoot();
const decoder = new EventDecoder(root);

function encode(typeName: string, payload: Record<string, unknown>) {
  const type = root.lookupType(typeName);
  return { type_url: typeName, value: type.encode(type.fromObject(payload)).finish() };
}

test("decodes each handled event by its type URL", (t) => {
  t.deepEqual(decoder.decodeEvent(encode("containerd.events.TaskStart", { containerId: "c1", pid: 42 })), {
    kind: "TaskStart",
    containerId: "c1",
    pid: 42,
  });
  t.deepEqual(
    decoder.decodeEvent(
      encode("containerd.events.TaskExit", {
        containerId: "c1",
        id: "c1",
        pid: 42,
        exitStatus: 137,
        exitedAt: { seconds: 1795785059, nanos: 5 },
      }),
    ),
    { kind: "TaskExit", containerId: "c1", id: "c1", pid: 42, exitStatus: 137, exitedAt: 1795785059000000005n },
  );
  const create = decoder.decodeEvent(
    encode("containerd.events.TaskCreate", {
      containerId: "c1",
      bundle: "/run/b",
      pid: 7,
      rootfs: [{ type: "overlay", source: "overlay", options: ["upperdir=/u", "lowerdir=/l"] }],
    }),
  );
  t.like(create, { kind: "TaskCreate", containerId: "c1", bundle: "/run/b", pid: 7 });
  t.deepEqual(create.kind === "TaskCreate" ? create.rootfs[0]?.options : undefined, ["upperdir=/u", "lowerdir=/l"]);
  t.deepEqual(decoder.decodeEvent(encode("containerd.events.ContainerDelete", { id: "c9" })), {
    kind: "ContainerDelete",
    id: "c9",
  });
  t.deepEqual(decoder.decodeEvent(encode("containerd.events.TaskDelete", { containerId: "c1", pid: 7 })), {
    kind: "TaskDelete",
    containerId: "c1",
    id: "",
    pid: 7,
    exitStatus: 0,
    exitedAt: undefined,
  });
});

test("an unknown type URL is Other, a missing payload too", (t) => {
  t.deepEqual(
    decoder.decodeEvent({ type_url: "containerd.events.SnapshotPrepare", value: new Uint8Array([10, 1, 97]) }),
    {
      kind: "Other",
      typeUrl: "containerd.events.SnapshotPrepare",
    },
  );
  t.deepEqual(decoder.decodeEvent(null), { kind: "Other", typeUrl: "" });
});

test("a payload that does not decode is Undecodable with an invalid_data error, not a throw", (t) => {
  const event = decoder.decodeEvent({ type_url: "containerd.events.TaskStart", value: new Uint8Array([0x0a, 0xff]) });
  t.is(event.kind, "Undecodable");
  t.is(event.kind === "Undecodable" ? event.error.code : undefined, "invalid_data");
});

test("the envelope keeps the timestamp's nanoseconds", (t) => {
  const envelope = decoder.decodeEnvelope({
    timestamp: { seconds: 1795785059, nanos: 840517904 },
    namespace: "k8s.io",
    topic: "/tasks/start",
    event: encode("containerd.events.TaskStart", { containerId: "c1", pid: 1 }),
  });
  t.is(envelope.timestamp, 1795785059840517904n);
  t.is(envelope.topic, "/tasks/start");
});
