/**
 * The index's record classes stay inside it: listeners get its records typed read-only (like OpenTelemetry's
 * ReadableSpan), the API queries only.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../src");

function sources(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(folder, entry.name);
    return entry.isDirectory() ? sources(file) : file.endsWith(".ts") ? [file] : [];
  });
}

test("only src/index/ imports the index's record classes (TrackedContainer, WorkspaceEntry)", (t) => {
  const outside = sources(src).filter((file) => !file.startsWith(path.join(src, "index") + path.sep));
  t.true(outside.length > 10);
  for (const file of outside) {
    const text = readFileSync(file, "utf8");
    t.notRegex(text, /from "[^"]*index\/(tracked-container|workspace-entry)\.js"/, path.relative(src, file));
  }
});

test("the index's change notices type what they hand out read-only, without naming the record classes", (t) => {
  const changes = readFileSync(path.join(src, "index/changes.ts"), "utf8");
  t.notRegex(changes, /import[^;]*(TrackedContainer|WorkspaceEntry)/);
  const fields = [...changes.matchAll(/^ {2}(?!readonly )(\w+)\??:/gm)].map((m) => m[1]);
  t.deepEqual(fields, [], "every field of the listeners' types is readonly");
});
