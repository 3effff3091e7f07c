/**
 * A micro-benchmark runner with one process per case (the method of the shared bench anchors):
 * cases sharing a process contaminate each other on this 2-core machine (one case's garbage, JIT
 * state and bytecode flushing land on the next), so every case runs alone in a fresh child where
 * only its code is hot, as one auth path is hot in a real server.
 *
 * - child (env `BENCH_CASE=name`): calibrates `n` so one sample takes `SAMPLE_MS` (100), warms up
 *   for `WARMUP_MS` (1000), takes `SAMPLES` (10) samples and prints the median calls/s;
 * - parent: `ROUNDS` (7) rounds, every case once per round in rotated order; reports per case the
 *   median of the per-process medians, their spread, and the median of per-round ratios to the
 *   baseline (ratios of one round share the machine's state, so they are steadier than the rates).
 *
 * A case is `(n) => Promise<void>` that makes the call `n` times.
 */
import { spawnSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { performance } from "node:perf_hooks"

/** One case: make the call `n` times. */
export type Case = (n: number) => Promise<void>

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const runChild = async (run: Case): Promise<number> => {
  const sampleMs = env("SAMPLE_MS", 100)
  const samples = env("SAMPLES", 10)
  const warmupMs = env("WARMUP_MS", 1000)
  let n = 64
  for (;;) {
    const start = performance.now()
    await run(n)
    const took = performance.now() - start
    if (took > 20) {
      n = Math.max(1, Math.round((n * sampleMs) / took))
      break
    }
    n *= 2
  }
  const warmUntil = performance.now() + warmupMs
  while (performance.now() < warmUntil) await run(n)
  const rates: Array<number> = []
  for (let s = 0; s < samples; s++) {
    const start = performance.now()
    await run(n)
    rates.push((n * 1000) / (performance.now() - start))
  }
  return median(rates)
}

export interface Row {
  readonly name: string
  readonly median: number
  readonly min: number
  readonly max: number
  /** Median of per-round ratios to each reference case. */
  readonly ratios: Readonly<Record<string, number>>
}

/**
 * Runs the cases of `file` (the calling module, which must call `bench` at top level). In a child
 * it runs the one case named by `BENCH_CASE` and returns undefined.
 */
export const bench = async (
  file: string,
  cases: Readonly<Record<string, Case>>,
  references: ReadonlyArray<string>
): Promise<ReadonlyArray<Row> | undefined> => {
  const only = process.env.BENCH_CASE
  if (only !== undefined) {
    const run = cases[only]
    if (run === undefined) throw new Error(`unknown case ${only}`)
    process.stdout.write(`${JSON.stringify({ ops: await runChild(run) })}\n`)
    return undefined
  }
  const names = Object.keys(cases)
  const rounds = env("ROUNDS", 7)
  const rates: Record<string, Array<number>> = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]!
      const child = spawnSync(process.execPath, [...process.execArgv, file], {
        env: { ...process.env, BENCH_CASE: name },
        encoding: "utf8"
      })
      if (child.status !== 0) throw new Error(`${name}: ${child.stderr}`)
      rates[name]![round] = JSON.parse(child.stdout.trim().split("\n").pop()!).ops
    }
    process.stderr.write(`round ${round + 1}/${rounds} done (load ${loadavg()[0]!.toFixed(2)})\n`)
  }
  const rows = names.map((name): Row => ({
    name,
    median: median(rates[name]!),
    min: Math.min(...rates[name]!),
    max: Math.max(...rates[name]!),
    ratios: Object.fromEntries(
      references.map((ref) => [ref, median(rates[name]!.map((rate, round) => rate / rates[ref]![round]!))])
    )
  }))
  if (process.env.JSON_OUT !== undefined) writeFileSync(process.env.JSON_OUT, JSON.stringify({ rounds, rates, rows }, null, 2))
  return rows
}

/** The rows as a markdown table. */
export const printRows = (title: string, rows: ReadonlyArray<Row>, references: ReadonlyArray<string>): void => {
  const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(3))
  console.log(`\n${title}\n`)
  console.log(`| case | median calls/s | min..max | ${references.map((r) => `÷ ${r}`).join(" | ")} |`)
  console.log(`|---|---|---|${references.map(() => "---").join("|")}|`)
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${fmt(row.median)} | ${fmt(row.min)}..${fmt(row.max)} | ${
        references.map((r) => row.ratios[r]!.toFixed(3)).join(" | ")
      } |`
    )
  }
  console.log(`\nNode ${process.version}, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`)
}
