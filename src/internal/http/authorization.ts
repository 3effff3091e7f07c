// Strict parsing of the `Authorization` request header (RFC 7235, 6750, 7617).
//
// @effect/platform's own decoders are too lenient for an auth library: its bearer decoder takes
// any value as the token (`Token x` included), its Basic decoder refuses passwords that contain
// `:`, and a missing header decodes to an empty string. Here a value is either exactly
// `<scheme> <token68>` (scheme case-insensitive, one space) or malformed.

/** @internal */
export type Authorization =
  | { readonly _tag: "Bearer"; readonly token: string }
  | { readonly _tag: "Basic"; readonly username: string; readonly password: string }
  | { readonly _tag: "Other"; readonly scheme: string }
  | { readonly _tag: "Malformed" }

const malformed: Authorization = { _tag: "Malformed" }

// auth-scheme = token (RFC 7230 tchar); token68 (RFC 7235), which includes b64token (RFC 6750).
const credentialsPattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [A-Za-z0-9\-._~+/]+=*$/
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
// RFC 7617: neither the user-id nor the password may contain control characters.
const controlCharacter = /[\u0000-\u001f\u007f]/
// `ignoreBOM`: the user-id as sent, a leading U+FEFF included (a decoder strips it by default).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const basic = (token68: string): Authorization => {
  if (!base64Pattern.test(token68)) return malformed
  let text: string
  try {
    text = utf8.decode(Buffer.from(token68, "base64"))
  } catch {
    return malformed
  }
  // The user-id cannot contain a colon; the password can (split at the first one).
  const colon = text.indexOf(":")
  if (colon < 0 || controlCharacter.test(text)) return malformed
  return { _tag: "Basic", username: text.slice(0, colon), password: text.slice(colon + 1) }
}

/** @internal */
export const parse = (header: string): Authorization => {
  // `test` and slices rather than `exec`: no match array per request. The pattern allows one
  // space only, so the first space splits scheme from token68.
  if (!credentialsPattern.test(header)) return malformed
  const space = header.indexOf(" ")
  const scheme = header.slice(0, space)
  const token68 = header.slice(space + 1)
  switch (scheme.toLowerCase()) {
    case "bearer":
      return { _tag: "Bearer", token: token68 }
    case "basic":
      return basic(token68)
    default:
      return { _tag: "Other", scheme }
  }
}
