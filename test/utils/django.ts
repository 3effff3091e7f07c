// Runs snippets under Debian's python3-django (3.2) to compare with Django itself. Without it the
// suites are skipped with a loud line, and fail under EFFECT_AUTH_REQUIRE_SERVICES=1.
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { runProcess } from "./childProcess.js"

const candidates = [process.env.DJANGO_PYTHON, "/usr/bin/python3", "python3"].filter((p): p is string => !!p)

export const djangoPython: string | undefined = candidates.find((python) => {
  try {
    execFileSync(python, ["-c", "import django"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})

if (djangoPython === undefined) {
  const message = "*** SKIPPED Django comparison suites: install python3-django (apt-get install python3-django) or set DJANGO_PYTHON"
  if (process.env.EFFECT_AUTH_REQUIRE_SERVICES === "1") throw new Error(message)
  console.warn(message)
}

/**
 * Runs `script` (which reads JSON from stdin and prints JSON) with Django configured; TZ is UTC.
 * `database: "memory"` gives it an in-memory SQLite database (empty: the script migrates it);
 * `django` picks one of {@link djangos} (default: Debian's).
 */
export const runDjango = (
  script: string,
  input: unknown,
  options: { readonly database?: "memory"; readonly django?: Django } = {}
): any => {
  const prelude = `
import json, sys
import django
from django.conf import settings
settings.configure(
    SECRET_KEY="unused", USE_TZ=False, TIME_ZONE="UTC",
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    DATABASES=${options.database === "memory" ? `{"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}` : "{}"}, AUTH_PASSWORD_VALIDATORS=[
        {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
        {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
        {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    ])
django.setup()
data = json.load(sys.stdin)
`
  const out = execFileSync(options.django?.python ?? djangoPython!, ["-c", prelude + script], {
    input: JSON.stringify(input),
    env: { ...process.env, ...options.django?.env, TZ: "UTC" },
    encoding: "utf8"
  })
  return JSON.parse(out)
}

/** A Django site's database: where test/django/site.py finds it. */
export type SiteDatabase =
  | { readonly engine: "sqlite"; readonly name: string }
  | { readonly engine: "pg"; readonly name: string; readonly host: string; readonly port: string; readonly user: string }

/** A Django to hold effect-auth against: Debian's (3.2), and the newest from PyPI where .ci/run installed it. */
export interface Django {
  /** `major.minor`, as `PasswordHasher.djangoPresets` names them. */
  readonly version: string
  readonly python: string
  readonly env: Readonly<Record<string, string>>
}

const versionOf = (python: string, env: Readonly<Record<string, string>>): string | undefined => {
  try {
    return execFileSync(python, ["-c", "import django; print('%d.%d' % django.VERSION[:2])"], {
      env: { ...process.env, ...env },
      encoding: "utf8"
    }).trim()
  } catch {
    return undefined
  }
}

// .ci/run installs the newest Django release into .tmp/django-newest (`pip install --target`),
// run by Debian's Python 3.11 beside its own drivers (psycopg2, argon2-cffi, bcrypt).
const newestDir = fileURLToPath(new URL("../../.tmp/django-newest", import.meta.url))

export const djangos: ReadonlyArray<Django> = (() => {
  if (djangoPython === undefined) return []
  const debian = versionOf(djangoPython, {})
  const out: Array<Django> = debian === undefined ? [] : [{ version: debian, python: djangoPython, env: {} }]
  const newestEnv = { PYTHONPATH: newestDir }
  const newest = existsSync(newestDir) ? versionOf(djangoPython, newestEnv) : undefined
  if (newest !== undefined && newest !== debian) out.push({ version: newest, python: djangoPython, env: newestEnv })
  else console.warn("*** SKIPPED the newest Django's suites: .ci/run installs it into .tmp/django-newest")
  return out
})()

/**
 * Runs `action` of test/django/site.py (seed, ask, read, schema, login, ...) on `db` under `django`
 * (default: Debian's): Django with its auth and sessions apps, USE_TZ, and the site's settings
 * (SECRET_KEY, hashers) that script sets. Its JSON answer; a failing script is a defect that
 * carries its stderr.
 *
 * Asynchronous on purpose: a test that waited for Django synchronously held its worker's event
 * loop for as long as the Django calls in a row took (33 s at a load of 10 for one test of
 * test/DjangoSchema.test.ts), and vitest fails a run whose worker cannot hear the answer to its own
 * report within 60 s ("Timeout calling onTaskUpdate").
 */
export const site = (action: string, db: SiteDatabase, extra: object = {}, django: Django = djangos[0]!): Effect.Effect<any> =>
  Effect.flatMap(
    Effect.promise((signal) =>
      runProcess(django.python, [fileURLToPath(new URL("../django/site.py", import.meta.url))], {
        env: { ...process.env, ...django.env, TZ: "UTC" },
        input: JSON.stringify({ action, db, ...extra }),
        signal
      })
    ),
    ({ code, signal, stderr, stdout }) =>
      code === 0
        ? Effect.orDie(Effect.try(() => JSON.parse(stdout)))
        : Effect.die(new Error(`site.py ${action} exited with ${code ?? signal}\n${stderr}`))
  )
