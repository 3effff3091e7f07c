// Python's `urllib.parse.quote`: every character `keep` does not match becomes its UTF-8 bytes as
// `%XX` (upper-case hex), as Django encodes the URLs of its redirects.

/** @internal */
export const percentEncode = (text: string, keep: RegExp): string => {
  let out = ""
  for (const char of text) {
    if (keep.test(char)) out += char
    else for (const byte of Buffer.from(char, "utf8")) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out
}
