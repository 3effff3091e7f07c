/**
 * What an untyped caller may hand over at worst: a Proxy whose every trap throws, so that reading
 * it in any way (`in`, a property, its prototype, its keys, `instanceof`) is an exception.
 */
export const hostile = (): any =>
  new Proxy({}, new Proxy({}, { get: () => () => { throw new Error("hostile") } }))
