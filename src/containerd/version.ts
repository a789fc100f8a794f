/**
 * Which containerd lines ctrwatch supports (README: `ctrwatch run`): 1.6, 1.7 and 2.x, all on the API
 * `containerd.services.*.v1`, each proven in CI. 1.6 and 1.7 are past their end of life: they work the same, and the
 * daemon says so once at start.
 */
export const supportedContainerdLines = ["1.6", "1.7", "2.x"] as const;
const endOfLifeSeries: readonly string[] = ["1.6", "1.7"];

/** `current`: a supported line in support; `end_of_life`: supported, past its end of life; `unsupported`: any other. */
export type VersionSupport = "current" | "end_of_life" | "unsupported";

export interface VersionCheck {
  readonly support: VersionSupport;
  /** `major.minor`, or undefined when the version string is not `vMAJOR.MINOR...`. */
  readonly series: string | undefined;
}

/** Reads containerd's version string (`1.6.20~ds1`, `v1.7.2`, `2.1.9+unknown`, `v2.3.4`...). */
export function checkContainerdVersion(version: string): VersionCheck {
  const match = /^v?(\d+)\.(\d+)(?:[.~+-]|$)/.exec(version.trim());
  const series = match ? `${match[1]}.${match[2]}` : undefined;
  const support: VersionSupport =
    series === undefined
      ? "unsupported"
      : endOfLifeSeries.includes(series)
        ? "end_of_life"
        : match?.[1] === "2"
          ? "current"
          : "unsupported";
  return { series, support };
}
