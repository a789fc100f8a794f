import { readFile } from "node:fs/promises";

/** Mount points (from /proc/self/mountinfo, octal escapes decoded) at or under `dir`, in mount order. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile("/proc/self/mountinfo", "utf8");
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  return table
    .split("\n")
    .filter(Boolean)
    .map((line) => decodeOctal(line.split(" ")[4] ?? ""))
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(prefix));
}

function decodeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
