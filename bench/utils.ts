/** Shared helpers of the benchmark scripts: argument parsing and a plain-text table. */
export const parseArgs = <A extends Record<string, number>>(defaults: A): A => {
  const out: Record<string, number> = { ...defaults }
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]!.replace(/^--/, "")
    if (key in out && argv[i + 1] !== undefined) out[key] = Number(argv[++i])
  }
  return out as A
}

export const printTable = (title: string, rows: ReadonlyArray<ReadonlyArray<string>>): void => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)))
  console.log(`\n${title}`)
  rows.forEach((row, i) => {
    console.log(`| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")} |`)
    if (i === 0) console.log(`| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`)
  })
}
