// A login form's username as Django's AuthenticationForm cleans it, before any backend sees it.
import { normalizeUsername } from "../../UserStore.js"
import { codePointsWithin } from "../codePoints.js"
import { pyStrip } from "../pyStrip.js"

/** Django's `max_length` of `AbstractUser.username`, which the form's field takes. @internal */
export const maxLength = 150

/**
 * `UsernameField.to_python`: stripped as `CharField` strips (Python's `str.strip()`, so a phone's
 * trailing space or an ideographic one logs in), then NFKC unless it is already too long, in
 * code points as Django counts (the form refuses it then; NFKC only grows a string, and Django
 * skips it there, as a denial of service vector).
 *
 * @internal
 */
export const clean = (username: string): string => {
  const stripped = pyStrip(username)
  return codePointsWithin(stripped, 0, maxLength) ? normalizeUsername(stripped) : stripped
}
