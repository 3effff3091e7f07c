// The message of the stores' errors (users, sessions, API tokens): which store, which operation,
// and the driver's own message.

/** `<store>: <operation> failed: <the cause's message>`. @internal */
export const failedMessage = (store: string, operation: string, cause: unknown): string =>
  `${store}: ${operation} failed: ${cause instanceof Error ? cause.message : String(cause)}`
