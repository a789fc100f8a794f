/** The real things the containerd benchmarks share: a private containerd, a kubelet playing against it, its pods. */
import { PrivateContainerd } from "../../test/harness/containerd.js";
import { Kubelet, type Pod } from "../../test/harness/kubelet.js";

export interface Stack {
  readonly containerd: PrivateContainerd;
  readonly kubelet: Kubelet;
  /** Workspace pods running (B1 starts them, B2 and B6 use them). */
  readonly pods: Pod[];
  close(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const containerd = await PrivateContainerd.start();
  const kubelet = new Kubelet(containerd);
  return {
    containerd,
    kubelet,
    pods: [],
    close: async () => {
      await kubelet.close();
      await containerd.destroy();
    },
  };
}
