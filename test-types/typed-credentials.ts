/**
 * Type-level test: `AuthService.authenticate` accepts the credentials a backend can take, as a
 * type, and a shape that none can take does not compile. Compiled with `tsc -p test-types`.
 */
import { Effect, Redacted, Schema } from "effect"
import { AuthService } from "../src/index.js"

// An app's own credentials, registered once (as the user type is).
export const Pin = Schema.Struct({ employee: Schema.String, pin: Schema.String })

declare module "../src/Credentials.js" {
  interface Register {
    readonly credentials: typeof Pin.Encoded
  }
}

export const accepted = [
  AuthService.authenticate({ username: "alice", password: "wonderland" }),
  AuthService.authenticate({ username: "alice", password: Redacted.make("wonderland") }),
  AuthService.authenticate({ token: "ea_demo" }),
  AuthService.authenticate({ remoteUser: "alice" }),
  // the registered kind
  AuthService.authenticate({ employee: "e42", pin: "1234" })
]

// @ts-expect-error a misspelt field is no credentials of any backend
export const misspelt = AuthService.authenticate({ usrname: "alice", password: "wonderland" })

// @ts-expect-error a password must be a string or a Redacted string
export const numeric = AuthService.authenticate({ username: "alice", password: 1234 })

// @ts-expect-error half of the registered kind
export const halfPin = AuthService.authenticate({ employee: "e42" })

declare const body: unknown
// @ts-expect-error a body of unknown shape needs the decoding entry point ...
export const untyped = AuthService.authenticate(body)
// ... which takes it and lets every backend's Schema decode it
export const decoded = AuthService.authenticateUnknown(body)

// The service in context has the same signatures.
export const viaService = Effect.flatMap(AuthService.AuthService, (auth) => {
  // @ts-expect-error the service's authenticate is typed too
  auth.authenticate({ nope: true })
  return auth.authenticate({ token: "ea_demo" })
})
