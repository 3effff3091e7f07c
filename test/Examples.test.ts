import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { djangoPython } from "./utils/django.js"

const run = promisify(execFile)

// Each example runs in a child process with 60 s of its own: the test waits as long (the default
// 30 s cut the Django example short once under the full suite's load, where it starts Python
// eight times).
describe("examples", { timeout: 90_000 }, () => {
  it("the README's quick start runs and logs the token login", async () => {
    const { stdout } = await run("npx", ["tsx", "examples/quick-start.ts"], { timeout: 60_000 })
    expect(stdout).toContain("bot logged in via tokens")
  })

  it("the guide's yes/no backend example runs end to end", async () => {
    const { stdout } = await run("npx", ["tsx", "examples/yes-no-backend.ts"], { timeout: 60_000 })
    expect(stdout).toContain("alice: logged in as alice via yes-no")
    expect(stdout).toContain("alice: refused: AuthenticationFailed")
    expect(stdout).toContain("mallory: refused: PermissionDenied")
    expect(stdout).toContain("ops: logged in as ops via local")
  })

  it("the OIDC example logs in against its local provider", async () => {
    const { stdout } = await run("npx", ["tsx", "examples/oidc.ts", "--demo"], { timeout: 60_000 })
    expect(stdout).toContain("Logged in as alice via oidc.")
  })

  it.skipIf(djangoPython === undefined)("the Django example shares sessions with a Django site both ways", async () => {
    const { stdout } = await run("npx", ["tsx", "examples/django-site.ts", "--demo"], {
      timeout: 60_000,
      env: { ...process.env, DJANGO_PYTHON: djangoPython }
    })
    expect(stdout).toContain("Django's session is alice's here.")
    expect(stdout).toContain("This service's session is alice's on Django.")
    expect(stdout).toContain("Typed \uff41\uff4c\uff49\uff43\uff45: logged in as alice.")
  })
})
