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

const missingName = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ERR_MODULE_NOT_FOUND"
    ? /Cannot find package '([^']+)'/.exec(String((error as { message?: unknown }).message))?.[1]
    : undefined

/**
 * The one line to print when every one of `errors` says that a package could not be found,
 * naming them and what to install; `undefined` when any is another error (a missing file of an
 * installed package is a broken install, not a missing peer).
 */
export const missingPackages = (errors: ReadonlyArray<unknown>): string | undefined => {
  const names = errors.map(missingName)
  if (names.length === 0 || names.some((name) => name === undefined)) return undefined
  const missing = Array.from(new Set(names as ReadonlyArray<string>)).sort()
  const versions = peerVersions()
  const install = missing.some((name) => (cliPackages as ReadonlyArray<string>).includes(name))
    ? Array.from(new Set([...cliPackages, ...missing]))
    : missing
  const which = missing.length === 1
    ? `the package ${missing[0]}, which is not installed`
    : `the packages ${missing.slice(0, -1).join(", ")} and ${missing[missing.length - 1]}, which are not installed`
  return `effect-auth: the command-line tool needs ${which}; ` +
    `install ${missing.length === 1 ? "it" : "them"} with: npm install ${install.map((pkg) => pinned(pkg, versions)).join(" ")}`
}

/**
 * For a database driver that is loaded only when used (`@effect/sql-sqlite-node`,
 * `@effect/sql-pg`): when `error`, or the error it wraps, says a package is missing, what to
 * install; `undefined` otherwise.
 */
export const installHint = (error: unknown): string | undefined => {
  const name = missingName(error) ??
    (typeof error === "object" && error !== null ? missingName((error as { cause?: unknown }).cause) : undefined)
  return name === undefined
    ? undefined
    : `the package ${name} is not installed; install it with: npm install ${pinned(name, peerVersions())}`
}
