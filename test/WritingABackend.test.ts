/**
 * The guide's example backend (examples/yes-no-backend.ts) against its tiny user service, and the
 * test-kit pattern the guide recommends for apps: swap the backend's Tag for a scripted one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { AuthService, TestAuth, TestBackend } from "../src/index.js"
import { startUserService, YesNoBackend, YesNoBackendLive } from "../examples/yes-no-backend.js"

const authWith = (url: string) => TestAuth.layer([YesNoBackend]).pipe(Layer.provide(YesNoBackendLive(url)))

describe("the yes/no backend of the guide", () => {
  it.scoped("lets alice in, names the backend, and loads her again by id", () =>
    Effect.gen(function*() {
      const url = yield* startUserService
      const result = yield* Effect.gen(function*() {
        const auth = yield* AuthService.AuthService
        const { backend, user } = yield* auth.authenticate({ username: "alice", password: "wonderland" })
        const again = yield* auth.getUser(backend, user.id)
        const canPost = yield* auth.hasPerm(user, "blog.add_post")
        return { backend, user, again, canPost }
      }).pipe(Effect.provide(authWith(url)))
      expect(result.backend).toBe("yes-no")
      expect(result.user.username).toBe("alice")
      expect(result.again._tag).toBe("Some")
      expect(result.canPost).toBe(true)
    }))

  it.scoped("a wrong password is AuthenticationFailed; a disabled user is PermissionDenied", () =>
    Effect.gen(function*() {
      const url = yield* startUserService
      const [wrong, disabled] = yield* Effect.all([
        Effect.flip(AuthService.authenticate({ username: "alice", password: "nope" })),
        Effect.flip(AuthService.authenticate({ username: "mallory", password: "evil" }))
      ]).pipe(Effect.provide(authWith(url)))
      expect(wrong._tag).toBe("AuthenticationFailed")
      expect(disabled._tag).toBe("PermissionDenied")
    }))

  it.live("a user service that is down ends in BackendUnavailable (its policy falls through)", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        AuthService.authenticate({ username: "alice", password: "wonderland" }).pipe(
          Effect.provide(authWith("http://127.0.0.1:1"))
        )
      )
      expect(error._tag).toBe("BackendUnavailable")
    }))

  it.effect("an app's test swaps the backend's Tag for a scripted one", () =>
    Effect.gen(function*() {
      const scripted = TestBackend.succeed("yes-no", TestBackend.user("alice"))
      const result = yield* AuthService.authenticate({ username: "alice", password: "anything" }).pipe(
        Effect.provide(TestAuth.layer([YesNoBackend]).pipe(Layer.provide(Layer.succeed(YesNoBackend, scripted))))
      )
      expect(result.user.username).toBe("alice")
      expect(scripted.calls).toHaveLength(1)
    }))
})
