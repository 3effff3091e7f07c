// The published package's shape, checked from the sources (no build needed): every public module
// is a flat sub-path (`effect-auth/ModelBackend`, as `@effect/platform/HttpApi` is), the exports
// map, the tsconfig and docgen `paths`, src/index.ts and the README agree, and the bin is the
// compiled CLI entry. A module added without its sub-path fails here.
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const read = (file: string) => fs.readFileSync(path.join(root, file), "utf8")
const json = (file: string) => JSON.parse(read(file))

const pkg = json("package.json")
const tsconfig = json("tsconfig.json")
const docgen = json("docgen.json")

// src/**/*.ts outside internal/ and cli/, as paths without the extension: "backends/ModelBackend".
const publicModules = (dir = ""): Array<string> =>
  fs.readdirSync(path.join(root, "src", dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = dir === "" ? entry.name : `${dir}/${entry.name}`
    if (entry.isDirectory()) return rel === "internal" || rel === "cli" ? [] : publicModules(rel)
    return entry.name.endsWith(".ts") && rel !== "index.ts" ? [rel.slice(0, -3)] : []
  })

const modules = publicModules()
const flatName = (module: string) => path.posix.basename(module)

/** Node's rule for the `exports` map: an exact key wins, else the longest matching `*` pattern. */
const resolveExport = (subpath: string): unknown => {
  if (Object.hasOwn(pkg.exports, subpath)) return pkg.exports[subpath]
  const patterns = Object.keys(pkg.exports)
    .filter((key) => key.includes("*"))
    .filter((key) => {
      const [prefix, suffix] = key.split("*") as [string, string]
      return subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length - 1
    })
    .sort((a, b) => b.indexOf("*") - a.indexOf("*"))
  const key = patterns[0]
  if (key === undefined) return undefined
  const [prefix, suffix] = key.split("*") as [string, string]
  const star = subpath.slice(prefix.length, subpath.length - suffix.length)
  const target = pkg.exports[key]
  return target === null ? null : JSON.parse(JSON.stringify(target).replaceAll("*", star))
}

/** TypeScript's rule for `paths`: an exact key wins, else the longest matching prefix. */
const resolvePath = (paths: Record<string, Array<string>>, specifier: string): string | undefined => {
  if (Object.hasOwn(paths, specifier)) return paths[specifier]![0]
  const key = Object.keys(paths)
    .filter((k) => k.endsWith("*") && specifier.startsWith(k.slice(0, -1)))
    .sort((a, b) => b.length - a.length)[0]
  return key === undefined ? undefined : paths[key]![0]!.replace("*", specifier.slice(key.length - 1))
}

describe("the package", () => {
  it("every public module has a flat name of its own", () => {
    expect(modules).toEqual(expect.arrayContaining(["AuthService", "backends/ModelBackend", "http/HttpAuth", "testing/TestAuth"]))
    const names = modules.map(flatName)
    expect(new Set(names).size).toBe(names.length)
  })

  it("exports: effect-auth/<Module> is the module, wherever it lives under src", () => {
    for (const module of modules) {
      expect(resolveExport(`./${flatName(module)}`), module).toEqual({
        types: `./dist/${module}.d.ts`,
        default: `./dist/${module}.js`
      })
    }
    // The nested paths, used by older snippets, load the same file (one module instance).
    expect(resolveExport("./backends/ModelBackend")).toEqual(resolveExport("./ModelBackend"))
    expect(resolveExport(".")).toEqual({ types: "./dist/index.d.ts", default: "./dist/index.js" })
    expect(resolveExport("./internal/policy")).toBeNull()
    expect(resolveExport("./cli/main")).toBeNull()
  })

  it("tsconfig and docgen paths agree with the exports", () => {
    for (const module of modules) {
      expect(resolvePath(tsconfig.compilerOptions.paths, `effect-auth/${flatName(module)}`), module).toBe(`./src/${module}.ts`)
      expect(resolvePath(docgen.examplesCompilerOptions.paths, `effect-auth/${flatName(module)}`), module).toBe(
        `../../src/${module}.ts`
      )
    }
    expect(resolvePath(tsconfig.compilerOptions.paths, "effect-auth")).toBe("./src/index.ts")
  })

  it("src/index.ts names each namespace after its file", () => {
    const reexports = [...read("src/index.ts").matchAll(/export \* as (\w+) from "\.\/([\w/]+)\.js"/g)]
    expect(reexports.length).toBeGreaterThan(20)
    for (const [, name, file] of reexports) {
      expect(modules, file).toContain(file)
      expect(flatName(file!)).toBe(name)
    }
  })

  it("the README's module table names every module", () => {
    const section = read("README.md").split("## Modules")[1]?.split("\n## ")[0] ?? ""
    for (const module of modules) expect(section, module).toContain(`\`${flatName(module)}\``)
  })

  it("the bin is the compiled CLI entry, a node script", () => {
    expect(pkg.bin).toEqual({ "effect-auth": "dist/cli/main.js" })
    expect(read("src/cli/main.ts").startsWith("#!/usr/bin/env node\n")).toBe(true)
    expect(pkg.scripts.build).toContain("chmod")
    expect(pkg.license).toBe("MIT")
    expect(read("LICENSE")).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} the effect-auth authors\n/)
  })
})
