// The local provider of the OIDC example, for the tests (see examples/local-provider.ts).
export { browser, type LocalProvider, signIn, startProvider } from "../../examples/local-provider.js"
