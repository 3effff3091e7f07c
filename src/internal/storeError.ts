// The message of the stores' errors (users, sessions, API tokens): which store, which operation,
// and why, down to the driver's own reason, in one line. The layers between (a Migrator's
// "Migration … failed", a SqlError's "Failed to execute statement") say where; the innermost
// cause says why (`table auth_user already exists`), so every message is carried.

/** Each cause's message, outermost first, without repeats. @internal */
export const reasons = (cause: unknown): Array<string> => {
  const out: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 6 && current !== undefined && current !== null; depth++) {
    const message = current instanceof Error ? current.message : typeof current === "string" ? current : String(current)
    const line = message.replace(/\s+/g, " ").trim()
    if (line !== "" && !out.includes(line)) out.push(line)
    current = current instanceof Error || (typeof current === "object" && "cause" in current)
      ? (current as { readonly cause?: unknown }).cause
      : undefined
  }
  return out
}

/** `<store>: <operation> failed: <each cause's message, outermost first>`. @internal */
export const failedMessage = (store: string, operation: string, cause: unknown): string =>
  `${store}: ${operation} failed: ${reasons(cause).join(": ")}`
