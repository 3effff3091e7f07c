import type * as AST from "effect/SchemaAST"
import * as ParseResult from "effect/ParseResult"

/**
 * The paths at which a value failed to decode, without the offending values: a peer's answer (a
 * user service, an LDAP entry, a key set) may hold personal data or hashes, and may be hostile.
 * A path names what the Schema declares (a struct's fields, an array's indices); a key of a
 * `Schema.Record` comes from the value itself (a peer may echo a login into one, or send one of
 * a megabyte), and is written `*`.
 *
 * The issue tree is walked here rather than through `ParseResult.ArrayFormatter`: the formatters
 * render each issue's message, and so the value received, recursively; a body of a few thousand
 * nested arrays overflows the stack there. This walk never looks at a value, keeps an explicit
 * stack and stops after a bounded number of issues.
 *
 * @internal
 */
export const failingPaths = (error: ParseResult.ParseError): string => {
  const found = new Set<string>()
  // Each issue with its path so far and the Schema of the composite it is part of.
  const stack: Array<readonly [ParseResult.ParseIssue, ReadonlyArray<string>, AST.AST | undefined]> = [
    [error.issue, [], undefined]
  ]
  for (let visited = 0; stack.length > 0 && found.size < maxPaths && visited < maxIssuesVisited; visited++) {
    const [issue, path, container] = stack.pop()!
    switch (issue._tag) {
      case "Pointer": {
        const keys = Array.isArray(issue.path) ? issue.path : [issue.path as PropertyKey]
        stack.push([issue.issue, path.concat(keys.map((key) => keyName(container, key))), undefined])
        break
      }
      case "Refinement":
      case "Transformation":
        stack.push([issue.issue, path, container])
        break
      case "Composite": {
        const issues = Array.isArray(issue.issues) ? issue.issues : [issue.issues as ParseResult.ParseIssue]
        // pushed in reverse, so the first issue is described first
        for (let i = issues.length - 1; i >= 0; i--) stack.push([issues[i]!, path, issue.ast])
        break
      }
      default:
        found.add(path.length === 0 ? "<root>" : path.join("."))
    }
  }
  return [...found].join(", ")
}

// An index, or a field the struct declares, by its name; any other key (a record's) as `*`.
const keyName = (container: AST.AST | undefined, key: PropertyKey): string =>
  typeof key === "number" ||
    (container?._tag === "TypeLiteral" && container.propertySignatures.some((signature) => signature.name === key))
    ? JSON.stringify(String(key))
    : "*"

const maxPaths = 5
// A Schema with thousands of fields or a long array of bad elements still costs a bounded walk.
const maxIssuesVisited = 1_000

/**
 * `ParseResult.TreeFormatter`'s message, for input an app gave (a form, a CLI argument), where
 * the value received helps and is the caller's own. A value too deep to render (the formatter
 * recurses through it) is described by its failing paths instead of overflowing the stack, and
 * one too long to show (a message past 1,000 characters) by its failing paths too.
 *
 * @internal
 */
export const treeMessage = (error: ParseResult.ParseError): string => {
  try {
    const message = ParseResult.TreeFormatter.formatErrorSync(error)
    // a megabyte of email quoted back would fill every log line it reaches
    return message.length <= maxMessageLength ? message : `invalid at ${failingPaths(error)} (the value is too long to show)`
  } catch {
    return `invalid at ${failingPaths(error)}`
  }
}

const maxMessageLength = 1_000
