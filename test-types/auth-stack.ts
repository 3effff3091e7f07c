/**
 * Type-level test: `AuthStack.layer` says in its type what it still needs, so an app that forgets
 * the session store (or a backend's layer) does not compile, rather than failing at the first login.
 */
import { Layer, Redacted } from "effect"
import { type AuthService, AuthStack, HttpAuth, MemorySessionStore, type Session, type SessionStore, TestBackend } from "../src/index.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"

const secret = Redacted.make("a secret of at least sixteen characters")

const withSessions = AuthStack.layer({ backends: [TestBackend.noMatch("local")], sessions: { secret } })
// It provides the session service and needs a store ...
export const provides: Layer.Layer<Session.Session, unknown, SessionStore.SessionStore> = withSessions
// @ts-expect-error ... so without one it still needs something
export const forgotStore: Layer.Layer<Session.Session, unknown, never> = withSessions
export const complete: Layer.Layer<Session.Session, unknown, never> = withSessions.pipe(Layer.provide(MemorySessionStore.layer))

// A backend given by its Tag is a requirement until its layer is provided.
const model = AuthStack.layer({ backends: [ModelBackend.ModelBackend] })
// @ts-expect-error the model backend's layer is missing
export const forgotBackend: Layer.Layer<AuthStack.Services, unknown, never> = model
export const needsModel: Layer.Layer<AuthStack.Services, unknown, ModelBackend.ModelBackend> = model
// Without sessions there is no session service to depend on.
// @ts-expect-error no sessions were configured
export const noSession: Layer.Layer<Session.Session, unknown, never> = AuthStack.layer({ backends: [TestBackend.noMatch("t")] })

// HttpAuth.layer with session cookies on needs the Session service in its type.
export const cookiesNeedSession: Layer.Layer<HttpAuth.HttpAuth, unknown, Session.Session | AuthService.AuthService> =
  HttpAuth.layer({ session: true })
// @ts-expect-error a forgotten Session layer is a compile error
export const forgotSession: Layer.Layer<HttpAuth.HttpAuth, unknown, AuthService.AuthService> = HttpAuth.layer({ session: true })
