// A lone surrogate (half of a UTF-16 pair, or a pair cut in two) is no character: `encodeURIComponent`
// throws on it, and databases store it as something else.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** `s` with every lone surrogate made U+FFFD, as `String.prototype.toWellFormed` does. @internal */
export const wellFormed = (s: string): string => s.replace(loneSurrogate, "\uFFFD")

/** Whether `s` holds no lone surrogate, as `String.prototype.isWellFormed` answers. @internal */
export const isWellFormed = (s: string): boolean => s.search(loneSurrogate) === -1

/**
 * Whether every store keeps `s` as it is: no NUL (PostgreSQL refuses it in text) and no lone
 * surrogate (PostgreSQL's driver writes U+FFFD; Python cannot encode it).
 *
 * @internal
 */
export const isStorable = (s: string): boolean => !s.includes("\u0000") && isWellFormed(s)
