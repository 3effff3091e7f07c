// Runs snippets under Debian's python3-django (3.2) to compare with Django itself. Without it the
// suites are skipped with a loud line, and fail under EFFECT_AUTH_REQUIRE_SERVICES=1.
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

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
 * `database: "memory"` gives it an in-memory SQLite database (empty: the script migrates it).
 */
export const runDjango = (script: string, input: unknown, options: { readonly database?: "memory" } = {}): any => {
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
  const out = execFileSync(djangoPython!, ["-c", prelude + script], {
    input: JSON.stringify(input),
    env: { ...process.env, TZ: "UTC" },
    encoding: "utf8"
  })
  return JSON.parse(out)
}

/** A Django site's database: where test/django/site.py finds it. */
export type SiteDatabase =
  | { readonly engine: "sqlite"; readonly name: string }
  | { readonly engine: "pg"; readonly name: string; readonly host: string; readonly port: string; readonly user: string }

/**
 * Runs `action` of test/django/site.py (seed, ask, read, schema) on `db`: Django 3.2 with its auth
 * and sessions apps, USE_TZ, and the site's settings (SECRET_KEY, hashers) that script sets.
 */
export const site = (action: string, db: SiteDatabase, extra: object = {}): any =>
  JSON.parse(execFileSync(djangoPython!, [fileURLToPath(new URL("../django/site.py", import.meta.url))], {
    input: JSON.stringify({ action, db, ...extra }),
    env: { ...process.env, TZ: "UTC" },
    encoding: "utf8"
  }))
