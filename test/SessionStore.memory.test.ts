import * as MemorySessionStore from "../src/MemorySessionStore.js"
import { sessionStoreSuite } from "./utils/sessionStoreSuite.js"

sessionStoreSuite("memory", { layer: () => MemorySessionStore.layer })
