/**
 * Password rules, as Django's `AUTH_PASSWORD_VALIDATORS`: the same four validators with the same
 * algorithms and messages (`MinimumLengthValidator`, `UserAttributeSimilarityValidator`,
 * `CommonPasswordValidator` with Django's list of 20,000 common passwords (either release's),
 * `NumericPasswordValidator`), and any validator of your own.
 *
 * {@link validate} runs every validator and fails with one {@link InvalidPassword} listing every
 * rule the password breaks, as Django's `validate_password` does. Run it where a password is
 * chosen (sign-up, a password change or reset) before hashing it: the `effect-auth` CLI does for
 * `createuser` and `changepassword`.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordValidation } from "effect-auth"
 *
 * const program = PasswordValidation.validate(Redacted.make("alice1"), { username: "alice" }).pipe(
 *   Effect.catchTag("InvalidPassword", (e) => Effect.succeed(e.messages))
 * )
 * // [ "The password is too similar to the username.",
 * //   "This password is too short. It must contain at least 8 characters." ]
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { commonPasswords, lists } from "./internal/commonPasswords.js"
import { pyLower } from "./internal/pyLower.js"
import { pyStrip } from "./internal/pyStrip.js"
import { isRedactedString } from "./internal/redactedString.js"
import { holdsAssignedAfterUnicode14, mapAsUnicode14 } from "./internal/unicode14.js"

/**
 * One broken rule: Django's error `code` (`password_too_short`, `password_too_similar`,
 * `password_too_common`, `password_entirely_numeric`, or your own) and its message.
 *
 * @example
 * ```ts
 * import type { PasswordValidation } from "effect-auth"
 *
 * const issue: PasswordValidation.Issue = { code: "password_too_common", message: "This password is too common." }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Issue {
  readonly code: string
  readonly message: string
}

/**
 * The password breaks one or more rules; `issues` lists every one, in the order of the
 * validators. It never holds the password.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordValidation } from "effect-auth"
 *
 * const checked = PasswordValidation.validate(Redacted.make("12345")).pipe(
 *   Effect.catchTag("InvalidPassword", (e) => Effect.logInfo(e.messages.join(" ")))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPassword extends Schema.TaggedError<InvalidPassword>("effect-auth/InvalidPassword")(
  "InvalidPassword",
  { issues: Schema.Array(Schema.Struct({ code: Schema.String, message: Schema.String })) }
) {
  /** The messages alone, as Django's `ValidationError.messages`. */
  get messages(): ReadonlyArray<string> {
    return this.issues.map((issue) => issue.message)
  }
  override get message(): string {
    return this.messages.join(" ")
  }
}

/**
 * The user a password is for, as far as the validators look at it (Django reads these
 * attributes off the user model). A `UserStore.StoredUser` is one; an {@link Attribute} of your
 * own is read from the same object by its key.
 *
 * @example
 * ```ts
 * import type { PasswordValidation } from "effect-auth"
 *
 * const user: PasswordValidation.UserAttributes = { username: "alice", email: "alice@example.com" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface UserAttributes {
  readonly username?: string | undefined
  readonly firstName?: string | undefined
  readonly lastName?: string | undefined
  readonly email?: string | undefined
}

/**
 * A validator: `validate` fails with the {@link Issue} it finds (it may do I/O, e.g. ask a
 * breached-password service), and `helpText` tells the user the rule beforehand (Django's
 * `get_help_text`).
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import type { PasswordValidation } from "effect-auth"
 *
 * const noSpaces: PasswordValidation.Validator = {
 *   helpText: "Your password can’t contain spaces.",
 *   validate: (password) =>
 *     Redacted.value(password).includes(" ")
 *       ? Effect.fail({ code: "password_has_spaces", message: "This password contains a space." })
 *       : Effect.void
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Validator {
  readonly validate: (password: Redacted.Redacted<string>, user?: UserAttributes) => Effect.Effect<void, Issue>
  readonly helpText: string
}

// Python's len(): code points, not UTF-16 units.
const codePoints = (s: string): ReadonlyArray<string> => Array.from(s)

/**
 * Django's `MinimumLengthValidator`: at least `minLength` characters (code points, as Python
 * counts them); default 8.
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * const validators = [PasswordValidation.minimumLength({ minLength: 12 }), PasswordValidation.commonPassword()]
 * ```
 *
 * @since 0.1.0
 * @category validators
 */
export const minimumLength = (options: { readonly minLength?: number | undefined } = {}): Validator => {
  const minLength = options.minLength ?? 8
  const unit = minLength === 1 ? "character" : "characters"
  const issue: Issue = {
    code: "password_too_short",
    message: `This password is too short. It must contain at least ${minLength} ${unit}.`
  }
  return {
    helpText: `Your password must contain at least ${minLength} ${unit}.`,
    validate: (password) => codePoints(Redacted.value(password)).length < minLength ? Effect.fail(issue) : Effect.void
  }
}

/**
 * Python's `difflib.SequenceMatcher(a=a, b=b).quick_ratio()`: an upper bound of the similarity
 * ratio from the characters both strings hold, regardless of order (`2 × matches / (|a| + |b|)`).
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * PasswordValidation.quickRatio("abcd", "bcde") // 0.75
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const quickRatio = (a: string, b: string): number => {
  const as = codePoints(a)
  const bs = codePoints(b)
  const available = new Map<string, number>()
  for (const c of bs) available.set(c, (available.get(c) ?? 0) + 1)
  let matches = 0
  for (const c of as) {
    const n = available.get(c) ?? 0
    available.set(c, n - 1)
    if (n > 0) matches++
  }
  const length = as.length + bs.length
  return length === 0 ? 1 : (2 * matches) / length
}

/**
 * An attribute the similarity validator compares with: its key on {@link UserAttributes} and the
 * name the message uses (Django's field `verbose_name`).
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * const nickname: PasswordValidation.Attribute = { key: "nickname", verboseName: "nickname" }
 * PasswordValidation.userAttributeSimilarity({ attributes: [...PasswordValidation.defaultAttributes, nickname] })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Attribute {
  readonly key: string
  readonly verboseName: string
}

/**
 * Django's `DEFAULT_USER_ATTRIBUTES` with the verbose names of its `User` model.
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * PasswordValidation.defaultAttributes.map((a) => a.verboseName) // ["username", "first name", "last name", "email address"]
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultAttributes: ReadonlyArray<Attribute> = [
  { key: "username", verboseName: "username" },
  { key: "firstName", verboseName: "first name" },
  { key: "lastName", verboseName: "last name" },
  { key: "email", verboseName: "email address" }
]

// Python's `\W+` on str: runs of characters that are neither letters, numbers nor `_`; to Python
// 3.11 a character Unicode 14.0 leaves unassigned is none of them.
const NON_WORD = /[^\p{L}\p{N}_]+/u
const asNonWord = () => " "
const identity = (run: string) => run
const wordParts = (s: string): Array<string> => mapAsUnicode14(s, identity, asNonWord).split(NON_WORD)

// An attribute an untyped caller's user cannot give (a Proxy whose traps throw) is absent.
const attributeOf = (user: object, key: string): unknown => {
  try {
    return (user as Readonly<Record<string, unknown>>)[key]
  } catch {
    return undefined
  }
}

/**
 * Django's `UserAttributeSimilarityValidator`: refuses a password whose `quick_ratio` with an
 * attribute (lowercased), or with any part of it split at non-word characters (so both halves
 * of an email address), reaches `maxSimilarity` (default 0.7, at least 0.1). Without a user it
 * checks nothing.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordValidation } from "effect-auth"
 *
 * const similar = PasswordValidation.userAttributeSimilarity()
 * const refused = similar.validate(Redacted.make("alice2024"), { username: "alice", email: "alice@example.com" })
 * // fails: "The password is too similar to the username."
 * ```
 *
 * @since 0.1.0
 * @category validators
 */
export const userAttributeSimilarity = (
  options: { readonly attributes?: ReadonlyArray<Attribute> | undefined; readonly maxSimilarity?: number | undefined } = {}
): Validator => {
  const attributes = options.attributes ?? defaultAttributes
  const maxSimilarity = options.maxSimilarity ?? 0.7
  if (!(maxSimilarity >= 0.1)) throw new RangeError("maxSimilarity must be at least 0.1")
  // Django's `exceeds_maximum_length_ratio`: a value ten times shorter cannot be similar enough.
  const tooShortToMatter = (passwordLength: number, value: string) => {
    const valueLength = codePoints(value).length
    return passwordLength >= 10 * valueLength && valueLength < (maxSimilarity / 2) * passwordLength
  }
  return {
    helpText: "Your password can’t be too similar to your other personal information.",
    validate: (password, user) =>
      Effect.suspend(() => {
        if (user === undefined || user === null) return Effect.void
        const lower = pyLower(Redacted.value(password))
        const length = codePoints(lower).length
        for (const attribute of attributes) {
          // Other attributes (see Attribute) are read by name, as Django's getattr does.
          const value = attributeOf(user, attribute.key)
          if (typeof value !== "string" || value === "") continue
          const valueLower = pyLower(value)
          for (const part of [...wordParts(valueLower), valueLower]) {
            if (tooShortToMatter(length, part)) continue
            if (quickRatio(lower, part) >= maxSimilarity) {
              return Effect.fail<Issue>({
                code: "password_too_similar",
                message: `The password is too similar to the ${attribute.verboseName}.`
              })
            }
          }
        }
        return Effect.void
      })
  }
}

/**
 * Django's `CommonPasswordValidator`: refuses a password (lowercased, and stripped of whitespace
 * as Python's `str.strip` strips it, not as `trim`) found in a list: the lowercased `passwords`
 * you give, or Django's own list of 20,000 common passwords (BSD-licensed, by Royce Williams).
 * Django revised that list: `list` picks the one your Django ships, `"django-5.2"` (the default:
 * the list of newer releases, 5.2 LTS among them) or `"django-3.2"` (the older list, Debian
 * bookworm's Django 3.2). Any other `list` throws a `RangeError`, as Django's validators refuse
 * bad options when they are built.
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * const ours = PasswordValidation.commonPassword({ passwords: ["acme", "acme2024", "letmein"] })
 * // the list a Django 3.2 site next to this one refuses
 * const likeDjango32 = PasswordValidation.commonPassword({ list: "django-3.2" })
 * ```
 *
 * @since 0.1.0
 * @category validators
 */
export const commonPassword = (
  options: { readonly passwords?: Iterable<string>; readonly list?: CommonPasswordList | undefined } = {}
): Validator => {
  const list = options.list ?? "django-5.2"
  if (!(commonPasswordLists as ReadonlyArray<string>).includes(list)) {
    throw new RangeError(`list must be one of ${commonPasswordLists.join(", ")}`)
  }
  const custom = options.passwords === undefined ? undefined : new Set(Array.from(options.passwords, pyStrip))
  const issue: Issue = { code: "password_too_common", message: "This password is too common." }
  return {
    helpText: "Your password can’t be a commonly used password.",
    validate: (password) =>
      Effect.suspend(() =>
        (custom ?? commonPasswords(list)).has(pyStrip(pyLower(Redacted.value(password)))) ? Effect.fail(issue) : Effect.void
      )
  }
}

/**
 * The Django releases whose common-password list {@link commonPassword} carries.
 *
 * @example
 * ```ts
 * import type { PasswordValidation } from "effect-auth"
 *
 * const beside32: PasswordValidation.CommonPasswordList = "django-3.2"
 * ```
 *
 * @since 0.1.0
 * @category validators
 */
export type CommonPasswordList = "django-5.2" | "django-3.2"

/**
 * Every {@link CommonPasswordList}, the default first.
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * PasswordValidation.commonPasswordLists // ["django-5.2", "django-3.2"]
 * ```
 *
 * @since 0.1.0
 * @category validators
 */
export const commonPasswordLists: ReadonlyArray<CommonPasswordList> = lists

// Python's str.isdigit(): decimal digits plus the digits that are not decimal (superscripts,
// circled and Ethiopic digits, ...), listed from Python 3.11's Unicode database; a digit Unicode
// assigned after 14.0 (U+10D40) is unassigned there, no digit.
const ALL_DIGITS =
  /^[\p{Nd}\u00B2\u00B3\u00B9\u1369-\u1371\u19DA\u2070\u2074-\u2079\u2080-\u2089\u2460-\u2468\u2474-\u247C\u2488-\u2490\u24EA\u24F5-\u24FD\u24FF\u2776-\u277E\u2780-\u2788\u278A-\u2792\u{10A40}-\u{10A43}\u{10E60}-\u{10E68}\u{11052}-\u{1105A}\u{1F100}-\u{1F10A}]+$/u

/**
 * Django's `NumericPasswordValidator`: refuses a password made of digits only (Python's
 * `str.isdigit`).
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * const validators = [PasswordValidation.numericPassword()]
 * ```
 *
 * @since 0.1.0
 * @category validators
 */
export const numericPassword = (): Validator => {
  const issue: Issue = { code: "password_entirely_numeric", message: "This password is entirely numeric." }
  return {
    helpText: "Your password can’t be entirely numeric.",
    validate: (password) => {
      const text = Redacted.value(password)
      return ALL_DIGITS.test(text) && !holdsAssignedAfterUnicode14(text) ? Effect.fail(issue) : Effect.void
    }
  }
}

/**
 * The four validators of a new Django project's settings, in its order: user-attribute
 * similarity, minimum length 8, common passwords, all-numeric. `commonPasswordList` picks the
 * common-password list of your Django release (see {@link commonPassword}).
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * const strict = [...PasswordValidation.defaultValidators(), PasswordValidation.minimumLength({ minLength: 12 })]
 * // beside a Django 3.2 site
 * const likeDjango32 = PasswordValidation.defaultValidators({ commonPasswordList: "django-3.2" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultValidators = (
  options: { readonly commonPasswordList?: CommonPasswordList } = {}
): ReadonlyArray<Validator> => [
  userAttributeSimilarity(),
  minimumLength(),
  commonPassword({ list: options.commonPasswordList }),
  numericPassword()
]

/**
 * The validators in force (Django's `AUTH_PASSWORD_VALIDATORS` setting): {@link validate},
 * `UserManager` and the CLI use them. Without a layer of yours they are the
 * {@link defaultValidators}; {@link layer} (or {@link layerConfig}, from settings) replaces them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PasswordValidation } from "effect-auth"
 *
 * const rules = Effect.map(PasswordValidation.Validators, (validators) => validators.map((v) => v.helpText))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class Validators extends Context.Reference<Validators>()("effect-auth/PasswordValidation/Validators", {
  defaultValue: (): ReadonlyArray<Validator> => defaultValidators()
}) {}

/**
 * Sets the validators in force, as `AUTH_PASSWORD_VALIDATORS` does for a Django project.
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * // Django's four, with a 12-character minimum
 * const ValidatorsLive = PasswordValidation.layer([
 *   PasswordValidation.userAttributeSimilarity(),
 *   PasswordValidation.minimumLength({ minLength: 12 }),
 *   PasswordValidation.commonPassword(),
 *   PasswordValidation.numericPassword()
 * ])
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (validators: ReadonlyArray<Validator>): Layer.Layer<never> =>
  Layer.succeedContext(Context.make(Validators, validators))

/**
 * The names of Django's four validators as `AUTH_PASSWORD_VALIDATORS` names them (the classes of
 * `django.contrib.auth.password_validation`), in a new project's order.
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * PasswordValidation.djangoValidatorNames[1] // "MinimumLengthValidator"
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const djangoValidatorNames = [
  "UserAttributeSimilarityValidator",
  "MinimumLengthValidator",
  "CommonPasswordValidator",
  "NumericPasswordValidator"
] as const

/**
 * One of {@link djangoValidatorNames}.
 *
 * @example
 * ```ts
 * import type { PasswordValidation } from "effect-auth"
 *
 * const length: PasswordValidation.DjangoValidatorName = "MinimumLengthValidator"
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export type DjangoValidatorName = (typeof djangoValidatorNames)[number]

/**
 * Django's validators in force and their options, as a project's `AUTH_PASSWORD_VALIDATORS`
 * gives them: {@link fromSettings} makes the validators, {@link config} reads the settings from
 * the environment, {@link layerConfig} does both.
 *
 * - `validators`: which of Django's four, in order (default: all four, a new project's settings);
 *   empty for none (Django's own default, `AUTH_PASSWORD_VALIDATORS = []`).
 * - `minLength`: `MinimumLengthValidator`'s `min_length` (default 8, at least 1).
 * - `maxSimilarity`: `UserAttributeSimilarityValidator`'s `max_similarity` (default 0.7, at least 0.1).
 * - `commonPasswordList`: `CommonPasswordValidator`'s list, the one your Django ships (see
 *   {@link commonPassword}; default `"django-5.2"`).
 *
 * @example
 * ```ts
 * import type { PasswordValidation } from "effect-auth"
 *
 * // AUTH_PASSWORD_VALIDATORS = [{"NAME": "...MinimumLengthValidator", "OPTIONS": {"min_length": 12}}]
 * const settings: PasswordValidation.Settings = { validators: ["MinimumLengthValidator"], minLength: 12 }
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export interface Settings {
  readonly validators?: ReadonlyArray<DjangoValidatorName> | undefined
  readonly minLength?: number | undefined
  readonly maxSimilarity?: number | undefined
  readonly commonPasswordList?: CommonPasswordList | undefined
}

/**
 * The validators the {@link Settings} name, with their options. A name that is none of
 * {@link djangoValidatorNames}, a `minLength` that is no integer of at least 1, a
 * `maxSimilarity` under 0.1 or an unknown `commonPasswordList` throws a `RangeError`, as Django's
 * validators refuse bad options when they are built.
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * // Django's four, with a 12-character minimum
 * const ValidatorsLive = PasswordValidation.layer(PasswordValidation.fromSettings({ minLength: 12 }))
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const fromSettings = (settings: Settings = {}): ReadonlyArray<Validator> => {
  const { commonPasswordList, maxSimilarity, minLength } = settings
  // Checked whichever validators are named: a bad option is a mistake even where it is unused.
  if (minLength !== undefined && !(Number.isInteger(minLength) && minLength >= 1)) {
    throw new RangeError("minLength must be an integer of at least 1")
  }
  if (maxSimilarity !== undefined && !(maxSimilarity >= 0.1)) throw new RangeError("maxSimilarity must be at least 0.1")
  if (commonPasswordList !== undefined && !(commonPasswordLists as ReadonlyArray<string>).includes(commonPasswordList)) {
    throw new RangeError(`commonPasswordList must be one of ${commonPasswordLists.join(", ")}`)
  }
  return (settings.validators ?? djangoValidatorNames).map((name): Validator => {
    switch (name) {
      case "UserAttributeSimilarityValidator":
        return userAttributeSimilarity({ maxSimilarity })
      case "MinimumLengthValidator":
        return minimumLength({ minLength })
      case "CommonPasswordValidator":
        return commonPassword({ list: commonPasswordList })
      case "NumericPasswordValidator":
        return numericPassword()
      default:
        throw new RangeError(`${JSON.stringify(name)} is none of Django's validators (${djangoValidatorNames.join(", ")})`)
    }
  })
}

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

const validatorPath = "django.contrib.auth.password_validation."

// `MinimumLengthValidator,CommonPasswordValidator`, the dotted paths of settings.py too, or `none`.
const validatorList = (name: string): Config.Config<ReadonlyArray<DjangoValidatorName>> =>
  Config.mapOrFail(Config.string(name), (text) => {
    if (text.trim() === "none") return Either.right([])
    const names = text.split(",").map((item) => item.trim()).map((item) =>
      item.startsWith(validatorPath) ? item.slice(validatorPath.length) : item
    )
    const unknown = names.filter((item) => !(djangoValidatorNames as ReadonlyArray<string>).includes(item))
    return unknown.length === 0
      ? Either.right(names as ReadonlyArray<DjangoValidatorName>)
      : Either.left(ConfigError.InvalidData(
        [name],
        `${unknown.map((item) => JSON.stringify(item)).join(", ")}: expected ${djangoValidatorNames.join(", ")} ` +
          "(comma-separated), or none"
      ))
  })

/**
 * The {@link Settings} read from configuration (environment variables by default), all optional:
 * `PASSWORD_VALIDATORS` (Django's validator names, comma-separated, as `AUTH_PASSWORD_VALIDATORS`
 * lists them, the dotted path or the class name alone; `none` for no validation),
 * `PASSWORD_MIN_LENGTH`, `PASSWORD_MAX_SIMILARITY` and `PASSWORD_COMMON_LIST` (`django-5.2` or
 * `django-3.2`). The `effect-auth` CLI reads them.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { PasswordValidation } from "effect-auth"
 *
 * const settings = Effect.withConfigProvider(
 *   PasswordValidation.config,
 *   ConfigProvider.fromJson({ PASSWORD_VALIDATORS: "MinimumLengthValidator", PASSWORD_MIN_LENGTH: "12" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Settings> = Config.all({
  validators: optional(validatorList("PASSWORD_VALIDATORS")),
  minLength: optional(Config.integer("PASSWORD_MIN_LENGTH")),
  maxSimilarity: optional(Config.number("PASSWORD_MAX_SIMILARITY")),
  commonPasswordList: optional(Config.literal(...lists)("PASSWORD_COMMON_LIST"))
})

/**
 * Sets the validators in force from configuration: {@link config} by default (environment
 * variables), or any `Config.Wrap<Settings>`. Settings {@link fromSettings} refuses are a
 * `ConfigError`. Without any setting these are Django's four (a new project's settings).
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { PasswordValidation } from "effect-auth"
 *
 * // From PASSWORD_VALIDATORS, PASSWORD_MIN_LENGTH, ...
 * const FromEnv = PasswordValidation.layerConfig()
 *
 * // Or with names of your own
 * const Custom = PasswordValidation.layerConfig({ minLength: Config.integer("SIGNUP_MIN_LENGTH") })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Settings> = config
): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.effectContext(Effect.flatMap(Config.unwrap(options), (settings) =>
    Effect.try({
      try: () => Context.make(Validators, fromSettings(settings)),
      catch: (error) =>
        ConfigError.InvalidData([], `PasswordValidation settings: ${error instanceof Error ? error.message : String(error)}`)
    })))

// Validators read the password as a string; anything else (a plain string, a Redacted number,
// from a caller without types) is refused here rather than throwing inside one of them.
const notRedactedString = new InvalidPassword({
  issues: [{ code: "password_not_redacted_string", message: "The password must be a Redacted string." }]
})

const check = (
  password: Redacted.Redacted<string>,
  user: UserAttributes | undefined,
  validators: ReadonlyArray<Validator>
): Effect.Effect<void, InvalidPassword> =>
  !isRedactedString(password) ? Effect.fail(notRedactedString) : Effect.flatMap(
    Effect.forEach(validators, (validator) =>
      Effect.match(validator.validate(password, user), {
        onFailure: (issue): Issue | undefined => issue,
        onSuccess: () => undefined
      })),
    (issues) => {
      const found = issues.filter((issue): issue is Issue => issue !== undefined)
      return found.length === 0
        ? Effect.void
        : Effect.fail(new InvalidPassword({ issues: found.map(({ code, message }) => ({ code, message })) }))
    }
  )

/**
 * Django's `validate_password`: runs every validator (those you pass, else the {@link Validators}
 * in force: the {@link defaultValidators} unless a {@link layer} says otherwise) and fails with one
 * {@link InvalidPassword} listing every issue, or succeeds. A password that is not a `Redacted`
 * string (from a caller without types: a plain string, a wiped `Redacted`, a Proxy whose traps
 * throw) fails with the single issue `password_not_redacted_string`; no validator sees it. A user
 * attribute that cannot be read counts as absent.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordValidation } from "effect-auth"
 *
 * const choose = (password: Redacted.Redacted<string>) =>
 *   PasswordValidation.validate(password, { username: "alice", email: "alice@example.com" }).pipe(
 *     Effect.catchTag("InvalidPassword", (e) => Effect.fail(e.messages))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (
  password: Redacted.Redacted<string>,
  user?: UserAttributes,
  validators?: ReadonlyArray<Validator>
): Effect.Effect<void, InvalidPassword> =>
  validators === undefined
    ? Effect.flatMap(Validators, (inForce) => check(password, user, inForce))
    : check(password, user, validators)

/**
 * The help texts of the validators (Django's `password_validators_help_texts`), to show next to
 * a password field.
 *
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 *
 * PasswordValidation.helpTexts()
 * // ["Your password can’t be too similar to your other personal information.", ...]
 * ```
 *
 * @since 0.1.0
 * @category validation
 */
export const helpTexts = (validators?: ReadonlyArray<Validator>): ReadonlyArray<string> =>
  (validators ?? defaultValidators()).map((v) => v.helpText)
