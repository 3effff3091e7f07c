#!/usr/bin/env bash
# The published package as a consumer gets it: build, pack, install the tarball with the README's
# pinned peers (and no optional peer) into a fresh project under /tmp, then
#  - type-check a file that imports the main entry and several sub-paths, with skipLibCheck off;
#  - run it with node;
#  - run the bin, which must say in one line which CLI packages to install.
# Needs the npm registry. Usage: scripts/consumer-check.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/consumer-XXXXXX)
trap 'rm -rf "$work"' EXIT

cd "$root"
npm run build >/dev/null
tarball=$(npm pack --ignore-scripts --pack-destination "$work" 2>/dev/null | tail -n 1)

cd "$work"
echo '{ "name": "consumer", "version": "0.0.0", "private": true, "type": "module" }' >package.json
npm install --no-audit --no-fund "./$tarball" effect@3.22.4 @effect/platform@0.97.2 @effect/sql@0.52.1 >/dev/null 2>&1
npm install --no-audit --no-fund -D typescript@5.9.3 @types/node@20.19.43 >/dev/null 2>&1

cat >tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2022"], "module": "NodeNext", "moduleResolution": "NodeNext",
    "types": ["node"], "strict": true, "exactOptionalPropertyTypes": true,
    "skipLibCheck": false, "outDir": "out"
  },
  "include": ["*.ts"]
}
JSON
cat >index.ts <<'TS'
import { AuthEvents, AuthService, ModelBackend as ModelBackendNs, UserStore } from "effect-auth"
import * as Authentication from "effect-auth/Authentication"
import * as HttpAuth from "effect-auth/HttpAuth"
import * as ModelBackend from "effect-auth/ModelBackend"
import * as RedisSessionStore from "effect-auth/RedisSessionStore"
import * as RemoteUserBackend from "effect-auth/RemoteUserBackend"
import * as SqlUserStore from "effect-auth/SqlUserStore"
import * as TestAuth from "effect-auth/TestAuth"
import * as TestBackend from "effect-auth/TestBackend"
import * as Nested from "effect-auth/backends/ModelBackend"

// ioredis is not installed: a client of one's own fits RedisSessionStore.make.
const client: RedisSessionStore.RedisClient = {
  get: async () => null,
  set: async () => "OK",
  del: async () => 0,
  eval: async () => 0
}
const modules = [AuthEvents, AuthService, UserStore, Authentication, HttpAuth, RemoteUserBackend, SqlUserStore, TestAuth, TestBackend]
if (ModelBackend !== (ModelBackendNs as unknown) || Nested !== (ModelBackend as unknown)) throw new Error("two ModelBackends")
if (!modules.every((m) => typeof m === "object")) throw new Error("a module did not load")
console.log(`ok: ${modules.length + 2} modules, store ${typeof RedisSessionStore.make(client)}`)
TS
npx tsc -p .
node out/index.js

set +e
message=$(npx effect-auth users 2>&1)
code=$?
set -e
echo "$message"
[ "$code" = 1 ] && [ "$(printf '%s\n' "$message" | wc -l)" = 1 ] && [[ "$message" == *"npm install @effect/cli@"* ]] ||
  { echo "FAIL: the bin without its packages exited $code" >&2; exit 1; }
echo "consumer check passed"
