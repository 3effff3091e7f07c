/**
 * Django's lists of common passwords, as sets built on first use.
 *
 * Django replaced the list `CommonPasswordValidator` ships with: Debian's Django 3.2 carries the
 * older one, and newer releases (5.2 here) the revised one. A site validating with effect-auth
 * beside its Django should refuse what that Django refuses, so both are kept.
 *
 * @internal
 */
import * as Django32 from "./commonPasswords/django32.js"
import * as Django52 from "./commonPasswords/django52.js"

/** The Django releases whose list ships here, newest first. @internal */
export const lists = ["django-5.2", "django-3.2"] as const

/** @internal */
export type List = (typeof lists)[number]

const sources: Record<List, string> = { "django-5.2": Django52.list, "django-3.2": Django32.list }
const sets = new Map<List, ReadonlySet<string>>()

/** One list as a set, built on first use (splitting 20,000 entries costs every import otherwise). @internal */
export const commonPasswords = (list: List): ReadonlySet<string> => {
  let set = sets.get(list)
  if (set === undefined) {
    set = new Set(sources[list].split("\n"))
    sets.set(list, set)
  }
  return set
}
