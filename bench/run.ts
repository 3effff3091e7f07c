/**
 * `npm run bench`: runs every benchmark in bench/, one after the other (they must not share the
 * two cores), each in its own process. `npm run bench -- fold` runs those whose name contains
 * "fold".
 */
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { fileURLToPath } from "node:url"

const dir = fileURLToPath(new URL(".", import.meta.url))
const filters = process.argv.slice(2).filter((arg) => !arg.startsWith("-"))
const scripts = readdirSync(dir)
  // The rest are modules the benchmarks share, not benchmarks.
  .filter((file) => file.endsWith(".ts") && !["run.ts", "utils.ts", "harness.ts", "tokenBackends.ts"].includes(file) && !file.startsWith("_"))
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort()

let failed = 0
for (const script of scripts) {
  console.log(`\n### bench/${script}`)
  const result = spawnSync(process.execPath, ["--import", "tsx", `${dir}${script}`], { stdio: "inherit" })
  if (result.status !== 0) failed++
}
process.exitCode = failed === 0 ? 0 : 1
