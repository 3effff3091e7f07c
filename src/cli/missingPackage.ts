// The CLI needs packages that are optional peers of effect-auth (a library user who never runs
// the CLI should not install them). When one is missing, the entry prints this line instead of
// Node's module-resolution stack trace. No imports beyond node: this must load when they fail.
import { readFileSync } from "node:fs"

/** What `effect-auth` imports at start-up besides effect-auth's required peers. */
export const cliPackages = ["@effect/cli", "@effect/platform-node", "@effect/sql-sqlite-node"] as const

// src/cli/ or dist/cli/: package.json is two levels up either way.
const peerVersions = (): Readonly<Record<string, string>> => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
    return typeof pkg.peerDependencies === "object" && pkg.peerDependencies !== null ? pkg.peerDependencies : {}
  } catch {
    return {}
  }
}

// "^0.77.2" → "@effect/cli@0.77.2": the lowest version of the range, the one effect-auth is
// tested with (the newest tags of these packages belong to Effect 4 and would not fit).
const pinned = (name: string, versions: Readonly<Record<string, string>>): string => {
  const range = versions[name]
  const lowest = range === undefined ? undefined : /\d+\.\d+\.\d+/.exec(range)?.[0]
  return lowest === undefined ? name : `${name}@${lowest}`
}

/**
 * The one line to print when `error` says that a package could not be found, naming what to
 * install; `undefined` for any other error (and for a missing file of an installed package,
 * which is a broken install, not a missing peer).
 */
export const missingPackage = (error: unknown): string | undefined => {
  if (typeof error !== "object" || error === null || (error as { code?: unknown }).code !== "ERR_MODULE_NOT_FOUND") {
    return undefined
  }
  const name = /Cannot find package '([^']+)'/.exec(String((error as { message?: unknown }).message))?.[1]
  if (name === undefined) return undefined
  const versions = peerVersions()
  const install = (cliPackages as ReadonlyArray<string>).includes(name) ? cliPackages : [name]
  return `effect-auth: the command-line tool needs the package ${name}, which is not installed; ` +
    `install it with: npm install ${install.map((pkg) => pinned(pkg, versions)).join(" ")}`
}
