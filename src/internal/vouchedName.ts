// A name an external system vouches for without a password (a proxy's remote-user header, a
// directory's or an identity provider's username): the store looks names up through NFKC, which
// is many-to-one, so such a name is found, compared and created by the rules here. The proxy's
// "ªdmin" is not the local "admin". The remote-user backend looks its names up exactly, as
// Django's `get_or_create` does; provisioning (LDAP, OIDC) in NFC.
import { boundedNfc, boundedNfkc } from "./codePoints.js"

/** The form provisioning looks a name up and compares it in: NFC (`José` composed or not is one name). @internal */
export const canonical: (name: string) => string = boundedNfc

/** Whether `user` is the one `name` (in {@link canonical} form) names: exactly. @internal */
export const names = (name: string) => (user: { readonly username: string }): boolean => user.username === name

/** Whether the store can create `name` apart from every other name: NFKC leaves it as it is. @internal */
export const creatable = (name: string): boolean => boundedNfkc(name) === name
