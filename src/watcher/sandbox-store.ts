/**
 * containerd 2.x's sandbox store, as the watcher reads it: the pod sandbox's record, whose created_at is the pod
 * sandbox's start (the CRI writes it before the pod's network setup and the sandbox container). containerd 1.x has no
 * such store and answers UNIMPLEMENTED: that means "no records here", learned once per connection (a round), never a
 * fault that ends the round. Read with Store/List once per sync and Store/Get once per new workspace sandbox container
 * seen live — no event marks the record itself.
 */
import type { ContainerdClient } from "../containerd/client.js";
import type { SandboxRecord } from "../containerd/records.js";
import type { Logger } from "../log.js";

export class SandboxStore {
  /** Whether containerd keeps sandbox records; undefined until this connection has answered. */
  private present: boolean | undefined;

  constructor(
    private readonly client: Pick<ContainerdClient, "listSandboxes" | "getSandbox">,
    private readonly logger: Logger,
  ) {}

  /** A new connection: the containerd behind the socket may have changed (an upgrade), so learn again. */
  reset(): void {
    this.present = undefined;
  }

  /** Every pod sandbox record; none where containerd keeps no records. Other failures end the round. */
  async list(signal: AbortSignal): Promise<readonly SandboxRecord[]> {
    if (this.present === false) return [];
    const answer = await this.client.listSandboxes({ signal, timeoutMs: 30_000 });
    this.learn(answer.store);
    return answer.store ? answer.value : [];
  }

  /** The pod sandbox's record; undefined when there is none (or no store). Other failures end the round. */
  async get(sandboxId: string, signal: AbortSignal): Promise<SandboxRecord | undefined> {
    if (this.present === false) return undefined;
    const answer = await this.client.getSandbox(sandboxId, { signal });
    this.learn(answer.store);
    return answer.store ? answer.value : undefined;
  }

  private learn(present: boolean): void {
    if (this.present === present) return;
    this.present = present;
    this.logger.debug(
      present
        ? "containerd keeps pod sandbox records: the pod sandbox's start is its record's created_at"
        : "containerd keeps no pod sandbox records (1.x): the pod sandbox's start is its sandbox container's creation",
    );
  }
}
