/**
 * Type-level tests: a control map must say what every outcome does, so a new outcome (a new
 * `NoMatch` reason, a new backend error) is a compile error wherever a map leaves it out.
 */
import { Context, type Layer } from "effect"
import { type AuthBackend, type AuthEvents, AuthService, Control, type Credentials, TestBackend } from "../src/index.js"
import type { AuthError } from "../src/index.js"

export const full: Control.ControlMap = {
  success: "succeed-at-end",
  "unsupported-credentials": "continue",
  "unknown-user": "fail-at-end",
  "invalid-credentials": "fail-at-end",
  "inactive-user": "fail",
  "expired-credentials": { skip: 1 },
  throttled: "fail-at-end",
  PermissionDenied: "fail",
  TransportError: "continue"
}

// @ts-expect-error TransportError is not handled
export const partial: Control.ControlMap = {
  success: "succeed-at-end",
  "unsupported-credentials": "continue",
  "unknown-user": "fail-at-end",
  "invalid-credentials": "fail-at-end",
  "inactive-user": "fail",
  "expired-credentials": "fail",
  throttled: "fail",
  PermissionDenied: "fail"
}

// The outcomes are derived from AuthError: every NoMatch reason is one.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
export const reasonsAreOutcomes: Equal<Extract<Control.Outcome, AuthError.NoMatchReason>, AuthError.NoMatchReason> = true
export const errorsAreOutcomes: Equal<
  Exclude<Control.Outcome, "success" | AuthError.NoMatchReason>,
  "PermissionDenied" | "TransportError"
> = true

// A new outcome tomorrow: the maps written for today's outcomes stop compiling against it.
type Tomorrow = Control.ControlMapOf<Control.Outcome | "rate-limited">
// @ts-expect-error `required` does not say what "rate-limited" does
export const stale: Tomorrow = Control.required
export const updated: Tomorrow = { ...Control.required, "rate-limited": "fail" }

// @ts-expect-error only a success may succeed
export const failureSucceeds: Control.ControlMap = { ...Control.required, "unknown-user": "succeed" }

// @ts-expect-error not a preset
export const unknownPreset = AuthService.control(TestBackend.noMatch("a"), "mandatory")

// The existing call forms and controlled entries mix in one list.
export const mixed = AuthService.layer([
  TestBackend.noMatch("plain"),
  AuthService.control(TestBackend.noMatch("ldap"), "sufficient"),
  AuthService.control(TestBackend.noMatch("password"), full)
])

// A controlled backend given by its Tag still makes the layer need that Tag.
class Directory extends Context.Tag("Directory")<Directory, AuthBackend.AuthBackend<Credentials.UsernamePassword>>() {}
export const needsDirectory: Layer.Layer<AuthService.AuthService, unknown, Directory | AuthEvents.AuthEvents> = AuthService
  .layer([AuthService.control(Directory, "required")])
// @ts-expect-error the layer still needs Directory
export const missingDirectory: Layer.Layer<AuthService.AuthService, unknown, AuthEvents.AuthEvents> = AuthService.layer([
  AuthService.control(Directory, "required")
])
