/** containerd versions ctrwatch is built and tested against (API `containerd.services.*.v1`). */
export const supportedContainerdSeries = ["1.6", "1.7"] as const;

export interface VersionCheck {
  readonly supported: boolean;
  /** `major.minor`, or undefined when the version string is not `vMAJOR.MINOR...`. */
  readonly series: string | undefined;
}

/** Reads containerd's version string (`1.6.20~ds1`, `v1.7.2`, `1.7.0-beta.1`...). */
export function checkContainerdVersion(version: string): VersionCheck {
  const match = /^v?(\d+)\.(\d+)(?:[.~+-]|$)/.exec(version.trim());
  const series = match ? `${match[1]}.${match[2]}` : undefined;
  return {
    series,
    supported: series !== undefined && (supportedContainerdSeries as readonly string[]).includes(series),
  };
}
