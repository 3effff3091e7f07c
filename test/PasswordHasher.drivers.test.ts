// A missing optional hashing driver (@node-rs/argon2, @node-rs/bcrypt) is reported as such, with
// the install command and the import error as the cause, the way SqlUserStore reports a missing
// database driver. The import is replaced through the drivers' seam to simulate the package's absence.
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as Argon2 from "../src/internal/hashers/argon2.js"
import * as Bcrypt from "../src/internal/hashers/bcrypt.js"
import * as PasswordHasher from "../src/PasswordHasher.js"

const notFound = (pkg: string) =>
  Object.assign(new Error(`Cannot find package '${pkg}' imported from /app/node_modules/effect-auth`), {
    code: "ERR_MODULE_NOT_FOUND"
  })

afterEach(() => {
  Argon2.driver.setImport(() => import("@node-rs/argon2"))
  Bcrypt.driver.setImport(() => import("@node-rs/bcrypt"))
})

// The hasher is idle here, so its failure is the HashError under test (never HasherBusy).
const asHashError = (error: PasswordHasher.HashError | PasswordHasher.HasherBusy) =>
  error._tag === "HashError" ? Effect.succeed(error) : Effect.dieMessage(`expected a HashError, got ${error._tag}`)

const hashWith = (hashers: PasswordHasher.Options["hashers"]) =>
  Effect.gen(function*() {
    const hasher = yield* PasswordHasher.PasswordHasher
    return yield* Effect.flatMap(Effect.flip(hasher.hash(Redacted.make("correct horse"))), asHashError)
  }).pipe(Effect.provide(PasswordHasher.layer({ hashers })))

describe("missing optional drivers", () => {
  it.effect("argon2 without @node-rs/argon2 names the package and the install command, with the cause", () =>
    Effect.gen(function*() {
      const cause = notFound("@node-rs/argon2")
      Argon2.driver.setImport(() => Promise.reject(cause))
      const error = yield* hashWith(["argon2"])
      expect(error._tag).toBe("HashError")
      expect(error.reason).toBe("@node-rs/argon2 is not installed (npm i @node-rs/argon2@2.2.1)")
      expect(error.message).toBe("argon2: @node-rs/argon2 is not installed (npm i @node-rs/argon2@2.2.1)")
      expect(error.cause).toBe(cause)
    }))

  it.effect("bcrypt_sha256 without @node-rs/bcrypt likewise, for hashing and for verifying", () =>
    Effect.gen(function*() {
      const cause = notFound("@node-rs/bcrypt")
      Bcrypt.driver.setImport(() => Promise.reject(cause))
      const error = yield* hashWith(["bcrypt_sha256"])
      expect(error.reason).toBe("@node-rs/bcrypt is not installed (npm i @node-rs/bcrypt@1.10.8)")
      expect(error.cause).toBe(cause)
      const verifyError = yield* Effect.gen(function*() {
        const hasher = yield* PasswordHasher.PasswordHasher
        return yield* Effect.flatMap(
          Effect.flip(hasher.verify(Redacted.make("pw"), "bcrypt$$2b$12$aaaaaaaaaaaaaaaaaaaaaOqGjX7Yz1yNqg0X1pQ9t3Zl0V9S5mW1e")),
          asHashError
        )
      }).pipe(Effect.provide(PasswordHasher.layer({ hashers: ["pbkdf2_sha256", "bcrypt"] })))
      expect(verifyError.reason).toBe("@node-rs/bcrypt is not installed (npm i @node-rs/bcrypt@1.10.8)")
    }))

  it.effect("a driver that is there but fails to load says so, and keeps the cause", () =>
    Effect.gen(function*() {
      const cause = new Error("libc mismatch in the native binding")
      Argon2.driver.setImport(() => Promise.reject(cause))
      const error = yield* hashWith(["argon2"])
      expect(error.reason).toBe("@node-rs/argon2 could not be loaded")
      expect(error.cause).toBe(cause)
    }))

  it.effect("once the package is back, the same hasher works (a failed import is not cached)", () =>
    Effect.gen(function*() {
      Argon2.driver.setImport(() => Promise.reject(notFound("@node-rs/argon2")))
      yield* hashWith(["argon2"])
      Argon2.driver.setImport(() => import("@node-rs/argon2"))
      const hasher = yield* PasswordHasher.PasswordHasher.pipe(Effect.provide(PasswordHasher.layer({ hashers: ["argon2"] })))
      const encoded = yield* hasher.hash(Redacted.make("correct horse"))
      expect(encoded.startsWith("argon2$argon2id$")).toBe(true)
    }))
})
